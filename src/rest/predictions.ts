import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { predictionRunJson } from '../services/datasets/json-views.js';
import { PREDICTION_FORMATS } from '../services/predictions/predictions.js';
import { errorResponses } from './errors.js';
import { eventStream, eventStreamResponse, IngestEventSchema, type IngestRouteOptions } from './ingest.js';
import { DatasetIdParams, newRouter } from './router.js';

const ImportBody = z
  .object({
    results_path: z.string({ error: 'must be a string' }).min(1, 'must not be empty').openapi({ description: 'A COCO results file (JSON array of {image_id, category_id, score, bbox?, segmentation?}), or a folder of YOLO prediction .txt files (class cx cy w h conf), inside DATAVISOR_DATA_ROOTS' }),
    format: z.enum(PREDICTION_FORMATS, { error: `must be one of ${PREDICTION_FORMATS.map((f) => `"${f}"`).join(', ')}` }).default('auto').openapi({ description: '`auto`: a folder is YOLO, a file COCO' }),
    split: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional().openapi({ description: 'The split the predictions were made for: image ids (the file\'s own, after `into` renumbered them) and YOLO file stems are those of its samples' }),
    name: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(100, 'must be at most 100 characters').openapi({ description: 'The run\'s name, unique in the dataset', example: 'yolov8n' }),
    replace: z.boolean({ error: 'must be true or false' }).optional().openapi({ description: 'Replace a run of the same name instead of answering CONFLICT' }),
  })
  .openapi('PredictionImportRequest');

const PredictionRunSchema = z
  .object({
    name: z.string(),
    prediction_count: z.number().int(),
    source_path: z.string().nullable(),
    created_at: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('PredictionRun');

const importPredictions = createRoute({
  method: 'post',
  path: '/datasets/{id}/predictions',
  summary: 'Imports a COCO results file as a prediction run of the dataset, streaming progress as server-sent events',
  description:
    'Events as the ingest\'s (`parsing_predictions`, then `complete` with `prediction_count`, or `error`). A request that fails its ' +
    'schema answers 400 JSON before any stream starts; every later failure (unknown dataset, image_id or category_id, a missing ' +
    'score, a name already used: CONFLICT) is an `error` event and nothing is left behind. Closing the connection cancels the import.',
  request: { params: DatasetIdParams, body: { required: true, content: { 'application/json': { schema: ImportBody } } } },
  responses: {
    200: { description: '`data: {json}` per event', content: { 'text/event-stream': { schema: IngestEventSchema } } },
    ...errorResponses(400, 413, 415),
  },
});

const listPredictions = createRoute({
  method: 'get',
  path: '/datasets/{id}/predictions',
  summary: 'The prediction runs of a dataset, oldest first',
  request: { params: DatasetIdParams },
  responses: {
    200: { description: 'The runs', content: { 'application/json': { schema: z.object({ predictions: z.array(PredictionRunSchema) }) } } },
    ...errorResponses(404),
  },
});

const deletePredictions = createRoute({
  method: 'delete',
  path: '/datasets/{id}/predictions/{name}',
  summary: 'Deletes a prediction run: every prediction of it',
  request: { params: DatasetIdParams.extend({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' } }) }) },
  responses: { 204: { description: 'Deleted' }, ...errorResponses(404) },
});

export function predictionRoutes(dv: DataVisor, opts: IngestRouteOptions = {}) {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  return newRouter()
    .openapi(importPredictions, (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const abort = new AbortController();
      const events = dv.predictions.import({ datasetId: id, resultsPath: body.results_path, name: body.name, replace: body.replace, format: body.format, split: body.split }, { signal: abort.signal });
      return eventStreamResponse(eventStream(events, abort, heartbeatMs, c.var.log));
    })
    .openapi(listPredictions, async (c) => c.json({ predictions: (await dv.predictions.list(c.req.valid('param').id)).map(predictionRunJson) }, 200))
    .openapi(deletePredictions, async (c) => {
      const { id, name } = c.req.valid('param');
      await dv.predictions.delete(id, name);
      return c.body(null, 204);
    });
}
