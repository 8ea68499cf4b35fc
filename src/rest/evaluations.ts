import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { evaluationJson } from '../services/datasets/json-views.js';
import { errorResponses } from './errors.js';
import { DatasetIdParams, jsonResponse, newRouter } from './router.js';

const EvaluationParams = DatasetIdParams.extend({
  evaluation_id: z.string().min(1).openapi({ param: { name: 'evaluation_id', in: 'path' } }),
});

const METRICS = ['ap', 'ap50', 'ap75', 'ap_small', 'ap_medium', 'ap_large', 'ar1', 'ar10', 'ar100', 'ar_small', 'ar_medium', 'ar_large'] as const;

const EvaluationSchema = z
  .object({
    id: z.string(),
    dataset_id: z.string(),
    predictions: z.string().openapi({ description: 'The prediction run\'s name' }),
    iou_type: z.enum(['bbox', 'segm']),
    state: z.enum(['current', 'stale']).openapi({ description: '`stale` once the ground truth or the run changed after the evaluation' }),
    metrics: z.object(Object.fromEntries(METRICS.map((m) => [m, z.number()]))).openapi({ description: 'pycocotools\' 12 summary numbers (-1 where it gives -1)' }),
    per_category: z.array(z.object({ category_id: z.number().int(), name: z.string().nullable(), ap: z.number(), ap50: z.number(), ap75: z.number(), ar100: z.number() })),
    totals: z.record(z.string(), z.number()).openapi({ description: 'TP, FP, FN at IoU 0.5, area all, 100 detections' }),
    errors: z.record(z.string(), z.number()).openapi({ description: 'False positives by TIDE kind, and missed objects' }),
    confusion: z.unknown().openapi({ description: '{category_ids, matrix}: rows GT category then background, columns predicted category then background (IoU 0.5)' }),
    created_at: z.string().openapi({ format: 'date-time' }),
    seconds: z.number(),
  })
  .openapi('Evaluation');

const EvaluateBody = z
  .object({
    predictions: z.string({ error: 'must be a string' }).min(1, 'must not be empty').openapi({ description: 'The name of a prediction run of the dataset' }),
    iou_type: z.enum(['bbox', 'segm'], { error: 'must be "bbox" or "segm"' }).default('bbox'),
  })
  .openapi('EvaluateRequest');

const evaluate = createRoute({
  method: 'post',
  path: '/datasets/{id}/evaluations',
  summary: 'Evaluates a prediction run against the ground truth as pycocotools\' COCOeval does, and stores every outcome',
  request: { params: DatasetIdParams, body: { required: true, content: { 'application/json': { schema: EvaluateBody } } } },
  responses: { 201: jsonResponse(EvaluationSchema, 'The evaluation'), ...errorResponses(400, 404, 409) },
});

const listEvaluations = createRoute({
  method: 'get',
  path: '/datasets/{id}/evaluations',
  summary: 'The evaluations of a dataset, oldest first',
  request: { params: DatasetIdParams },
  responses: { 200: jsonResponse(z.object({ evaluations: z.array(EvaluationSchema) }), 'The evaluations'), ...errorResponses(404) },
});

const getEvaluation = createRoute({
  method: 'get',
  path: '/datasets/{id}/evaluations/{evaluation_id}',
  summary: 'One evaluation',
  request: { params: EvaluationParams },
  responses: { 200: jsonResponse(EvaluationSchema, 'The evaluation'), ...errorResponses(404) },
});

const getCurves = createRoute({
  method: 'get',
  path: '/datasets/{id}/evaluations/{evaluation_id}/curves',
  summary: 'Precision-recall curves per category and IoU threshold (area all, 100 detections), with the score at each recall point',
  request: { params: EvaluationParams },
  responses: {
    200: jsonResponse(
      z.object({
        recall: z.array(z.number()),
        iou_thresholds: z.array(z.number()),
        curves: z.array(z.object({ category_id: z.number().int(), iou: z.number(), precision: z.array(z.number()), scores: z.array(z.number()) })),
      }),
      'The curves',
    ),
    ...errorResponses(404),
  },
});

const deleteEvaluation = createRoute({
  method: 'delete',
  path: '/datasets/{id}/evaluations/{evaluation_id}',
  summary: 'Deletes an evaluation and its outcomes',
  request: { params: EvaluationParams },
  responses: { 204: { description: 'Deleted' }, ...errorResponses(404) },
});

export function evaluationRoutes(dv: DataVisor) {
  return newRouter()
    .openapi(evaluate, async (c) => {
      const body = c.req.valid('json');
      const e = await dv.evaluations.evaluate({ datasetId: c.req.valid('param').id, predictions: body.predictions, iouType: body.iou_type });
      return c.json(evaluationJson(e) as never, 201);
    })
    .openapi(listEvaluations, async (c) => c.json({ evaluations: (await dv.evaluations.list(c.req.valid('param').id)).map(evaluationJson) } as never, 200))
    .openapi(getEvaluation, async (c) => {
      const { id, evaluation_id } = c.req.valid('param');
      return c.json(evaluationJson(await dv.evaluations.get(id, evaluation_id)) as never, 200);
    })
    .openapi(getCurves, async (c) => {
      const { id, evaluation_id } = c.req.valid('param');
      const curves = await dv.evaluations.curves(id, evaluation_id);
      return c.json(
        {
          recall: [...dv.evaluations.recallThresholds],
          iou_thresholds: [...dv.evaluations.iouThresholds],
          curves: curves.map((k) => ({ category_id: k.categoryId, iou: dv.evaluations.iouThresholds[k.iouIndex]!, precision: k.precision, scores: k.scores })),
        },
        200,
      );
    })
    .openapi(deleteEvaluation, async (c) => {
      const { id, evaluation_id } = c.req.valid('param');
      await dv.evaluations.delete(id, evaluation_id);
      return c.body(null, 204);
    });
}
