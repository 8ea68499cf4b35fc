import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { annotationJson, sampleJson } from '../services/datasets/json-views.js';
import { SAMPLE_FILTER_FIELDS, toSampleFilter, type SampleFilterInput } from '../services/datasets/filter.js';
import { parseMetadataParam } from '../services/datasets/metadata-filter.js';
import { SAMPLE_SORT_FIELDS, toSampleSort, type SampleSortInput } from '../services/datasets/sort.js';
import { MAX_PAGE_SIZE } from '../services/datasets/paging.js';
import { BadInputError } from '../services/errors.js';
import { errorResponses } from './errors.js';
import { ResponseCache } from './response-cache.js';
import { newRouter, queryBool, queryInt, queryNumber, requestOrigin } from './router.js';

/** The SQL binds offsets as 32-bit integers; no dataset comes near this many samples. */
const MAX_OFFSET = 2_000_000_000;
const MAX_COUNT = 2_147_483_647;

const SampleSchema = z
  .object({
    id: z.number().int().openapi({ description: 'The COCO image id, kept as it is', example: 9 }),
    dataset_id: z.string(),
    file_name: z.string(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    split: z.string().nullable(),
    annotation_count: z.number().int(),
    file_missing: z.boolean(),
    license_id: z.number().int().nullable(),
    coco_url: z.string().nullable(),
    date_captured: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    thumbnail_url: z.string().openapi({ description: 'Medium WebP thumbnail, usable as it is in <img>' }),
    image_url: z.string().openapi({ description: 'The original image file' }),
    thumbnail_path: z.string().openapi({ description: 'thumbnail_url without the origin (first REST draft)' }),
  })
  .openapi('Sample');

const AnnotationSchema = z
  .object({
    id: z.number().int(),
    position: z.number().int().openapi({ description: 'Unique in the dataset (COCO files may repeat `id`): what annotation tagging takes (`positions`)' }),
    dataset_id: z.string(),
    sample_id: z.number().int(),
    category_id: z.number().int(),
    category_name: z.string().nullable(),
    bbox_x: z.number().nullable(),
    bbox_y: z.number().nullable(),
    bbox_w: z.number().nullable(),
    bbox_h: z.number().nullable(),
    area: z.number().nullable(),
    is_crowd: z.boolean(),
    source: z.string(),
    confidence: z.number().nullable(),
    segmentation_kind: z.string(),
    segmentation: z.unknown().openapi({ description: 'Polygons, RLE or null, as in the COCO file' }),
    num_keypoints: z.number().int().nullable(),
    keypoints: z.array(z.number()).nullable(),
  })
  .openapi('Annotation');

const DatasetIdQuery = z.string({ error: 'must be a string' }).min(1, 'must not be empty').openapi({ example: 'k3v7q2mzx4a5b6c7' });

export const nonEmpty = () => z.string().min(1, 'must not be empty');
/** A parameter that may be repeated (`?category=a&category=b`). */
export const repeatable = () => z.union([nonEmpty(), z.array(nonEmpty())]).transform((v) => (Array.isArray(v) ? v : [v]));

const annotationNote = 'with the other annotation conditions, one annotation must meet them all';

const FILTER_PARAM_SCHEMAS: Record<keyof SampleFilterInput, z.ZodType> = {
  category: nonEmpty().openapi({ description: 'Samples with an annotation of this category name', example: 'person' }),
  categories: repeatable().openapi({ description: 'Samples with an annotation in any of these categories (repeat the parameter); joins `category`' }),
  split: nonEmpty().openapi({ example: 'train' }),
  fileNameContains: nonEmpty().openapi({ description: 'Case-sensitive substring of file_name' }),
  fileNameContainsIgnoreCase: nonEmpty().openapi({ description: 'Substring of file_name, ignoring case' }),
  fileNameGlob: nonEmpty().openapi({ description: 'A glob the whole file_name matches (`*`, `?`, `[a-z]`), case-sensitive', example: '*.png' }),
  minAnnotations: queryInt(0, MAX_COUNT),
  maxAnnotations: queryInt(0, MAX_COUNT),
  minWidth: queryInt(0, MAX_COUNT).openapi({ description: 'Image width at least this (px); samples without a size never match a size range' }),
  maxWidth: queryInt(0, MAX_COUNT),
  minHeight: queryInt(0, MAX_COUNT),
  maxHeight: queryInt(0, MAX_COUNT),
  minPixels: queryInt(0, Number.MAX_SAFE_INTEGER).openapi({ description: 'width × height at least this' }),
  maxPixels: queryInt(0, Number.MAX_SAFE_INTEGER),
  isCrowd: queryBool().openapi({ description: 'Samples with an annotation whose iscrowd flag is this' }),
  minBboxArea: queryNumber().openapi({ description: `Samples with an annotation whose box (w × h, px²) is at least this large; ${annotationNote}` }),
  maxBboxArea: queryNumber().openapi({ description: 'Samples with an annotation whose box (w × h, px²) is at most this large' }),
  minArea: queryNumber().openapi({ description: `Samples with an annotation whose \`area\` (the file's) is at least this; ${annotationNote}` }),
  maxArea: queryNumber(),
  minAspectRatio: queryNumber().openapi({ description: `Samples with an annotation whose box's w / h is at least this; ${annotationNote}` }),
  maxAspectRatio: queryNumber(),
  predictions: nonEmpty().openapi({ description: 'A prediction run: the annotation conditions test its predictions instead of the ground truth; alone, samples with a prediction of the run' }),
  minConfidence: queryNumber().openapi({ description: 'With `predictions`: a prediction scored at least this' }),
  maxConfidence: queryNumber(),
  fileMissing: queryBool().openapi({ description: 'The image file was (true) or was not (false) missing at ingest' }),
  evaluation: nonEmpty().openapi({ description: 'An evaluation id: samples with a TP, FP or FN in it (IoU 0.5), or those of `evaluation_has`' }),
  tags: repeatable().openapi({ description: 'Samples tagged with any of these (repeat the parameter)' }),
  tagsAll: repeatable().openapi({ description: 'Samples tagged with every one of these' }),
  tagsNone: repeatable().openapi({ description: 'Samples tagged with none of these' }),
  annotationTags: repeatable().openapi({ description: 'Samples with an annotation tagged with any of these; with the other annotation conditions, one annotation must meet them all' }),
  metadata: repeatable().openapi({
    description: 'A test of the sample metadata: `<path> <op> [<JSON value>]`, op one of eq ne lt lte gt gte in exists (repeat for more; all must hold)',
    example: '$.orientation eq "portrait"',
  }),
};

/** Every filter of the one filter module, under its snake_case name (also the object view's, the aggregations' and the export's). */
export const FILTER_PARAMS = Object.fromEntries(
  (Object.keys(SAMPLE_FILTER_FIELDS) as (keyof SampleFilterInput)[]).map((field) => [SAMPLE_FILTER_FIELDS[field].param, FILTER_PARAM_SCHEMAS[field].optional()]),
);

/** What `evaluation` asks of one object (repeat a parameter for several values). */
export const EVALUATION_HAS = {
  evaluation_has: repeatable().optional().openapi({ description: 'With `evaluation`: an object\'s outcome is one of these (tp, fp, fn)' }),
  evaluation_error: repeatable().optional().openapi({ description: 'With `evaluation`: an object\'s error kind is one of these (classification, localization, both, duplicate, background, missed)' }),
  evaluation_category: repeatable().optional().openapi({ description: 'With `evaluation`: the object (a prediction, or a missed object) is of one of these categories' }),
};

/** A saved view of the dataset: its filter applies, AND the filter parameters given (docs/curation.md). */
export const VIEW_PARAM = { view: nonEmpty().optional().openapi({ description: 'A saved view\'s id: its filter applies, AND the other filter parameters' }) };

/** The sort (services/datasets/sort.ts): a field, its direction, and what the field needs. */
const SORT_PARAMS = {
  sort: nonEmpty().optional().openapi({ description: `Sort by one of ${Object.keys(SAMPLE_SORT_FIELDS).join(', ')}; ties in file order, samples without a key last` }),
  direction: nonEmpty().optional().openapi({ description: 'asc (default) or desc' }),
  sort_category: nonEmpty().optional().openapi({ description: 'sort=category_count: the category name' }),
  sort_predictions: nonEmpty().optional().openapi({ description: 'sort=prediction_score_max|min: the prediction run' }),
  sort_evaluation: nonEmpty().optional().openapi({ description: 'sort=tp|fp|fn: the evaluation id' }),
  seed: queryInt(0, 2 ** 32 - 1).optional().openapi({ description: 'sort=random: the same seed gives the same order' }),
};

const PAGE_PARAMS = {
  dataset_id: DatasetIdQuery,
  offset: queryInt(0, MAX_OFFSET).default(0),
  limit: queryInt(0, MAX_PAGE_SIZE).default(50),
};

const KNOWN_PARAMS = [...Object.keys(PAGE_PARAMS), ...Object.keys(FILTER_PARAMS), ...Object.keys(EVALUATION_HAS), ...Object.keys(SORT_PARAMS), ...Object.keys(VIEW_PARAM)];

// Strict: a misspelt filter (`min_bbox_areaa`) must not answer the whole dataset.
const SamplesQuery = z.strictObject(
  { ...PAGE_PARAMS, ...FILTER_PARAMS, ...EVALUATION_HAS, ...SORT_PARAMS, ...VIEW_PARAM },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown parameter${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; the parameters are ${KNOWN_PARAMS.join(', ')}`
        : undefined,
  },
);

/** The query's filter parameters as the filter module's input. */
export function filterInput(q: Record<string, unknown>): SampleFilterInput {
  const input = Object.fromEntries(
    (Object.keys(SAMPLE_FILTER_FIELDS) as (keyof SampleFilterInput)[]).map((field) => [field, q[SAMPLE_FILTER_FIELDS[field].param]]),
  ) as SampleFilterInput;
  const [has, errors, categories] = (['evaluation_has', 'evaluation_error', 'evaluation_category'] as const).map((k) => {
    if (q[k] !== undefined && q.evaluation === undefined) throw new BadInputError(`query parameter "${k}" needs "evaluation" (the evaluation id)`);
    return q[k] as string[] | undefined;
  });
  if (q.evaluation !== undefined) input.evaluation = { id: q.evaluation as string, has, errors, categories };
  const metadata = q.metadata as string[] | undefined;
  if (metadata !== undefined) input.metadata = metadata.map((text, i) => parseMetadataParam(text, `query parameter "metadata"[${i}]`));
  return input;
}

const SORT_PARTS: Record<keyof SampleSortInput, string> = {
  field: 'sort',
  direction: 'direction',
  category: 'sort_category',
  predictions: 'sort_predictions',
  evaluationId: 'sort_evaluation',
  seed: 'seed',
};

/** The query's sort parameters as the sort module's input; null without `sort`. */
function sortInput(q: Record<string, unknown>): SampleSortInput | null {
  if (q.sort === undefined) {
    const stray = (Object.keys(SORT_PARTS) as (keyof SampleSortInput)[]).find((p) => p !== 'field' && q[SORT_PARTS[p]] !== undefined);
    if (stray) throw new BadInputError(`query parameter "${SORT_PARTS[stray]}" needs "sort" (the field to sort by)`);
    return null;
  }
  return Object.fromEntries((Object.keys(SORT_PARTS) as (keyof SampleSortInput)[]).map((p) => [p, q[SORT_PARTS[p]]])) as unknown as SampleSortInput;
}

const listSamples = createRoute({
  method: 'get',
  path: '/samples',
  summary: 'A page of samples, in file order or sorted (`sort`); filters combine with AND',
  description: 'Answers carry an ETag: send it back in `If-None-Match` to get 304 while the page is unchanged.',
  request: { query: SamplesQuery },
  responses: {
    200: {
      description: 'The page and the number of samples matching the filters',
      headers: z.object({ ETag: z.string() }),
      content: {
        'application/json': {
          schema: z.object({ items: z.array(SampleSchema), total: z.number().int(), offset: z.number().int(), limit: z.number().int() }),
        },
      },
    },
    304: { description: 'Not modified: If-None-Match matched the ETag' },
    ...errorResponses(400, 404),
  },
});

const listAnnotations = createRoute({
  method: 'get',
  path: '/samples/{sample_id}/annotations',
  summary: 'Annotations of one sample, in file order',
  request: {
    params: z.object({ sample_id: z.string().min(1).openapi({ param: { name: 'sample_id', in: 'path' }, example: '9' }) }),
    query: z.object({ dataset_id: DatasetIdQuery }),
  },
  responses: {
    200: { description: 'The annotations', content: { 'application/json': { schema: z.array(AnnotationSchema) } } },
    ...errorResponses(400, 404),
  },
});

export function sampleRoutes(dv: DataVisor) {
  const pages = new ResponseCache(dv.settings.pageCacheBytes);
  return newRouter()
    .openapi(listSamples, async (c) => {
      const q = c.req.valid('query');
      // Unknown (or deleted) datasets answer 404 before the cache is asked.
      const dataset = await dv.datasets.get(q.dataset_id);
      const origin = requestOrigin(c.req.url);
      // Everything the page depends on: the dataset's state, the query, the origin of its URLs and their signing epoch.
      const key = `${dataset.revision}\n${origin}\n${dv.access.imageUrlEpoch()}\n${JSON.stringify(q)}`;
      const cached = pages.get(key);
      // The declared 200 body, serialized once (hono types only c.json() answers as the schema's).
      if (cached) return (await pages.send(c, key, cached)) as never;
      const given = toSampleFilter(filterInput(q), (field) => `query parameter "${SAMPLE_FILTER_FIELDS[field].param}"`);
      const asked = toSampleSort(sortInput(q), (part) => `query parameter "${SORT_PARTS[part]}"`);
      const { filter, sort } = await dv.views.sliceOf(q.dataset_id, q.view, given, asked);
      const window = { kind: 'offset' as const, offset: q.offset, limit: q.limit };
      const [total, page] = await Promise.all([
        dv.samples.count(q.dataset_id, filter),
        sort ? dv.samples.sortedPage(q.dataset_id, filter, sort, window) : dv.samples.page(q.dataset_id, filter, window),
      ]);
      const body = { items: page.samples.map((s) => sampleJson(s, origin, dv.access)), total, offset: q.offset, limit: q.limit };
      return (await pages.send(c, key, pages.put(key, body))) as never;
    })
    .openapi(listAnnotations, async (c) => {
      const datasetId = c.req.valid('query').dataset_id;
      // Dataset first, so an unknown dataset is named as such rather than as a missing sample.
      await dv.datasets.get(datasetId);
      const sample = await dv.samples.get(datasetId, c.req.valid('param').sample_id);
      const [annotations] = await dv.samples.annotationsOf(datasetId, [sample.ord]);
      return c.json((annotations ?? []).map(annotationJson), 200);
    });
}
