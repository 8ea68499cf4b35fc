import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { imagePath, objectCropPath } from '../services/datasets/json-views.js';
import { toSampleFilter, SAMPLE_FILTER_FIELDS } from '../services/datasets/filter.js';
import { MAX_PAGE_SIZE } from '../services/datasets/paging.js';
import type { Sample } from '../services/datasets/samples.js';
import { ERROR_NAMES, OBJECT_SORT_FIELDS, OUTCOME_NAMES, toObjectFilter, toObjectSort, type ObjectFilterInput } from '../services/objects/object-filter.js';
import type { DatasetObject } from '../services/objects/objects.js';
import { BadInputError } from '../services/errors.js';
import { errorResponses } from './errors.js';
import { DatasetIdParams, jsonResponse, newRouter, queryBool, queryInt, queryNumber, requestOrigin } from './router.js';
import { EVALUATION_HAS, FILTER_PARAMS, filterInput, nonEmpty, repeatable, VIEW_PARAM } from './samples.js';

/** The object conditions (services/objects/object-filter.ts) under their REST names: `object_` keeps them apart from the sample filter's. */
const OBJECT_PARAMS = {
  object_category: repeatable().optional().openapi({ description: 'Objects in any of these categories (repeat the parameter)', example: 'person' }),
  object_label_set: nonEmpty().optional().openapi({ description: '`ground_truth` (default) or a prediction run\'s name; with `object_evaluation`, its run by default' }),
  object_min_area: queryNumber().optional().openapi({ description: 'COCO `area` at least this (px²)' }),
  object_max_area: queryNumber().optional(),
  object_min_confidence: queryNumber().optional().openapi({ description: 'Prediction score at least this' }),
  object_max_confidence: queryNumber().optional(),
  object_is_crowd: queryBool().optional(),
  object_evaluation: nonEmpty().optional().openapi({ description: 'An evaluation id: only objects it saw, with their outcome' }),
  object_outcome: repeatable().optional().openapi({ description: `With object_evaluation: any of ${OUTCOME_NAMES.join(', ')}` }),
  object_error: repeatable().optional().openapi({ description: `With object_evaluation: any of ${ERROR_NAMES.join(', ')}` }),
};

const PAGE_PARAMS = {
  sort: z.enum(OBJECT_SORT_FIELDS as [string, ...string[]], { error: `must be one of ${OBJECT_SORT_FIELDS.join(', ')}` }).optional()
    .openapi({ description: 'file (sample order, then position; default), area, confidence, iou (needs object_evaluation); ties on position' }),
  direction: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).optional(),
  first: queryInt(0, MAX_PAGE_SIZE).optional(),
  after: nonEmpty().optional().openapi({ description: 'A cursor of an item or page_info: the page after it' }),
  last: queryInt(0, MAX_PAGE_SIZE).optional(),
  before: nonEmpty().optional(),
  total: queryBool().optional().openapi({ description: 'Also count every matching object (one more query)' }),
};

const KNOWN = [...Object.keys(PAGE_PARAMS), ...Object.keys(OBJECT_PARAMS), ...Object.keys(FILTER_PARAMS), ...Object.keys(EVALUATION_HAS), ...Object.keys(VIEW_PARAM)];

// Strict: a misspelt condition must not answer every object.
const ObjectsQuery = z.strictObject(
  { ...PAGE_PARAMS, ...OBJECT_PARAMS, ...FILTER_PARAMS, ...EVALUATION_HAS, ...VIEW_PARAM },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown parameter${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; the parameters are ${KNOWN.join(', ')}`
        : undefined,
  },
);

const ObjectSchema = z
  .object({
    position: z.number().int().openapi({ description: 'Unique in the dataset: the annotation\'s position (crop URLs address it)' }),
    annotation_id: z.number().int(),
    category_id: z.number().int(),
    category_name: z.string().nullable(),
    bbox: z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }).nullable(),
    area: z.number().nullable(),
    is_crowd: z.boolean(),
    confidence: z.number().nullable(),
    label_set: z.string().openapi({ description: '`ground_truth` or the prediction run\'s name' }),
    evaluation: z.object({ outcome: z.string(), iou: z.number().nullable(), error: z.string().nullable() }).nullable()
      .openapi({ description: 'With object_evaluation: the object\'s outcome in it' }),
    crop_url: z.string().openapi({ description: 'Medium WebP crop of the box, usable as it is in <img>' }),
    cursor: z.string(),
    sample: z.object({ id: z.number().int(), file_name: z.string(), width: z.number().int().nullable(), height: z.number().int().nullable(), thumbnail_url: z.string() }),
  })
  .openapi('Object');

const listObjects = createRoute({
  method: 'get',
  path: '/datasets/{id}/objects',
  summary: 'A page of a dataset\'s annotations as rows (the object view), each with its sample and a crop URL',
  description: 'The sample filter parameters of /samples say which samples; the `object_*` parameters which of their objects. Keyset pages: `first`+`after` or `last`+`before`.',
  request: { params: DatasetIdParams, query: ObjectsQuery },
  responses: {
    200: jsonResponse(
      z.object({
        items: z.array(ObjectSchema),
        page_info: z.object({ has_next_page: z.boolean(), has_previous_page: z.boolean(), start_cursor: z.string().nullable(), end_cursor: z.string().nullable() }),
        total: z.number().int().optional().openapi({ description: 'With total=true' }),
      }),
      'The page',
    ),
    ...errorResponses(400, 404),
  },
});

type Query = z.infer<typeof ObjectsQuery>;

function objectFilterInput(q: Query): ObjectFilterInput {
  if ((q.object_outcome || q.object_error) && !q.object_evaluation) {
    throw new BadInputError('query parameters "object_outcome" and "object_error" need "object_evaluation" (the evaluation id)');
  }
  return {
    categories: q.object_category,
    labelSet: q.object_label_set,
    minArea: q.object_min_area,
    maxArea: q.object_max_area,
    minConfidence: q.object_min_confidence,
    maxConfidence: q.object_max_confidence,
    isCrowd: q.object_is_crowd,
    evaluation: q.object_evaluation ? { id: q.object_evaluation, outcomes: q.object_outcome, errors: q.object_error } : undefined,
  };
}

const PARAM_OF: Record<string, string> = { labelSet: 'object_label_set', minArea: 'object_min_area', maxArea: 'object_max_area', minConfidence: 'object_min_confidence', maxConfidence: 'object_max_confidence', evaluation: 'object_evaluation' };

export function objectRoutes(dv: DataVisor) {
  return newRouter().openapi(listObjects, async (c) => {
    const datasetId = c.req.valid('param').id;
    const q = c.req.valid('query');
    const given = toSampleFilter(filterInput(q), (field) => `query parameter "${SAMPLE_FILTER_FIELDS[field].param}"`);
    const samples = await dv.views.filterOf(datasetId, q.view, given);
    const objects = toObjectFilter(objectFilterInput(q), (field) => `query parameter "${PARAM_OF[field] ?? field}"`);
    const sort = toObjectSort({ field: q.sort, direction: q.direction }, (field) => `query parameter "${field === 'field' ? 'sort' : field}"`);
    const page = await dv.objects.page(datasetId, samples, objects, sort, { first: q.first, after: q.after, last: q.last, before: q.before });
    const origin = requestOrigin(c.req.url);
    // The samples of the page in one query.
    const ids = [...new Set(page.edges.map((e) => e.node.sampleId))];
    const found = await dv.samples.getMany(datasetId, ids);
    const byId = new Map(found.filter((s): s is Sample => !(s instanceof Error)).map((s) => [s.id, s]));
    const items = page.edges.map(({ node, cursor }) => objectJson(node, cursor, byId.get(node.sampleId)!, origin, dv));
    const { pageInfo: p } = page;
    const body = {
      items,
      page_info: { has_next_page: p.hasNextPage, has_previous_page: p.hasPreviousPage, start_cursor: p.startCursor, end_cursor: p.endCursor },
      ...(q.total ? { total: await page.totalCount() } : {}),
    };
    return c.json(body, 200);
  });
}

function objectJson(o: DatasetObject, cursor: string, s: Sample, origin: string, dv: DataVisor) {
  return {
    position: o.ord,
    annotation_id: o.annotationId,
    category_id: o.categoryId,
    category_name: o.categoryName,
    bbox: o.bbox,
    area: o.area,
    is_crowd: o.isCrowd,
    confidence: o.score,
    label_set: o.labelSetName,
    evaluation: o.evaluation,
    crop_url: origin + objectCropPath(o.datasetId, o.sampleId, o.ord, o.revision, 'medium', dv.access),
    cursor,
    sample: { id: s.id, file_name: s.fileName, width: s.width, height: s.height, thumbnail_url: origin + imagePath(s.datasetId, s.id, 'medium', dv.access) },
  };
}
