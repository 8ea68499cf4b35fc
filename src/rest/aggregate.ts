import { createRoute, z } from '@hono/zod-openapi';
import { HISTOGRAM_FIELDS, MAX_BINS, MAX_LIST, type AggregateTarget, type Histogram, type HistogramField } from '../services/aggregate/aggregations.js';
import type { DataVisor } from '../services/app.js';
import { SAMPLE_FILTER_FIELDS, toSampleFilter, type SampleFilterInput } from '../services/datasets/filter.js';
import { BadInputError } from '../services/errors.js';
import { errorResponses } from './errors.js';
import { DatasetIdParams, jsonResponse, newRouter, queryBool, queryInt, queryNumber, strictQuery } from './router.js';
import { EVALUATION_HAS, FILTER_PARAMS, filterInput, VIEW_PARAM } from './samples.js';

const PARTS = ['categories', 'splits', 'label_sets', 'cooccurrence'] as const;
type Part = (typeof PARTS)[number];

const nonEmpty = () => z.string().min(1, 'must not be empty');
/** A parameter that may be repeated, or list values separated by commas. */
const list = () => z.union([nonEmpty(), z.array(nonEmpty())]).transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')));

/** What every aggregation takes: the samples filter of GET /samples, and the label set. */
const TARGET_PARAMS = {
  ...FILTER_PARAMS,
  ...EVALUATION_HAS,
  ...VIEW_PARAM,
  predictions: nonEmpty().optional().openapi({ description: 'Annotation-level parts count this prediction run instead of the ground truth' }),
};

const AggregateQuery = strictQuery({
  ...TARGET_PARAMS,
  include: list().optional().openapi({ description: `Parts to add beside the counts: ${PARTS.join(', ')} (repeat the parameter or separate by commas)` }),
  category_samples: queryBool().optional().openapi({ description: 'With include=categories: also the samples holding each category' }),
  cooccurrence_limit: queryInt(1, MAX_LIST).optional().openapi({ description: 'Pairs answered at most (default 20)' }),
  histogram: list().optional().openapi({ description: `Histograms, each \`field\` or \`field:bins\` (bins 1..${MAX_BINS}; left out: Sturges' rule); fields ${HISTOGRAM_FIELDS.join(', ')}. GET …/aggregate/histogram takes a range and a log scale`, example: 'bbox_area:20' }),
  // Not `metadata`: that is the filter's metadata condition (`<path> <op> <value>`).
  metadata_values: z.union([nonEmpty(), z.array(nonEmpty())]).transform((v) => (Array.isArray(v) ? v : [v])).optional().openapi({ description: 'Metadata paths (repeat the parameter): distinct values with counts for each', example: 'camera.model' }),
  metadata_limit: queryInt(1, MAX_LIST).optional().openapi({ description: 'Values answered per path at most (default 100)' }),
});

const HistogramQuery = strictQuery({
  ...TARGET_PARAMS,
  field: z.enum(HISTOGRAM_FIELDS as [HistogramField, ...HistogramField[]], { error: `must be one of ${HISTOGRAM_FIELDS.join(', ')}` }),
  bins: queryInt(1, MAX_BINS).optional().openapi({ description: "Left out: Sturges' rule, ceil(log2(n) + 1)" }),
  min: queryNumber().optional().openapi({ description: 'With max: the range binned (values outside are not counted); left out, the data\'s own' }),
  max: queryNumber().optional(),
  scale: z.enum(['linear', 'log'], { error: 'must be linear or log' }).optional().openapi({ description: 'log: bins of equal width in ln(value); values ≤ 0 not counted' }),
});

const HistogramSchema = z
  .object({
    field: z.string(),
    scale: z.enum(['linear', 'log']),
    edges: z.array(z.number()).openapi({ description: 'bins + 1 values; bin i holds edges[i] ≤ v < edges[i+1], the last also its upper edge (numpy.histogram)' }),
    counts: z.array(z.number().int()),
  })
  .openapi('Histogram');

const AggregateSchema = z
  .object({
    sample_count: z.number().int(),
    annotation_count: z.number().int().openapi({ description: 'Annotations of the label set (ground truth, or `predictions`) in the selected samples' }),
    categories: z.array(z.object({ category_id: z.number().int(), name: z.string(), count: z.number().int(), sample_count: z.number().int().optional() })).optional(),
    splits: z.array(z.object({ name: z.string().nullable(), count: z.number().int() })).optional(),
    label_sets: z.array(z.object({ name: z.string(), kind: z.string(), count: z.number().int() })).optional(),
    cooccurrence: z.array(z.object({ a: z.string(), b: z.string(), count: z.number().int() })).optional(),
    histograms: z.array(HistogramSchema).optional(),
    metadata: z.array(z.object({ path: z.string(), values: z.array(z.object({ value: z.unknown(), count: z.number().int() })) })).optional(),
  })
  .openapi('Aggregate');

const aggregateRoute = createRoute({
  method: 'get',
  path: '/datasets/{id}/aggregate',
  summary: 'Counts, breakdowns and histograms over the samples the filter parameters of GET /samples select',
  request: { params: DatasetIdParams, query: AggregateQuery },
  responses: { 200: jsonResponse(AggregateSchema, 'The counts and the parts asked for'), ...errorResponses(400, 404) },
});

const histogramRoute = createRoute({
  method: 'get',
  path: '/datasets/{id}/aggregate/histogram',
  summary: 'One histogram over the filtered samples, with its bins, range and scale',
  request: { params: DatasetIdParams, query: HistogramQuery },
  responses: { 200: jsonResponse(HistogramSchema, 'The histogram'), ...errorResponses(400, 404) },
});

const param = (field: keyof SampleFilterInput) => `query parameter "${SAMPLE_FILTER_FIELDS[field].param}"`;

async function target(dv: DataVisor, id: string, q: Record<string, unknown>): Promise<AggregateTarget> {
  // `predictions` names the run the parts count, not a filter of samples holding its predictions.
  const given = toSampleFilter(filterInput({ ...q, predictions: undefined }), param);
  return dv.aggregations.target(id, await dv.views.filterOf(id, q.view as string | undefined, given), q.predictions as string | undefined);
}

/** `field` or `field:bins`. */
function histogramSpec(spec: string): { field: HistogramField; bins: number | null } {
  const [field, bins, ...rest] = spec.split(':');
  const bad = (why: string) => new BadInputError(`query parameter "histogram" ${JSON.stringify(spec)}: ${why}; write field or field:bins, e.g. bbox_area:20`);
  if (rest.length > 0) throw bad('too many parts');
  if (!(HISTOGRAM_FIELDS as readonly string[]).includes(field!)) throw bad(`${JSON.stringify(field)} is not a field (${HISTOGRAM_FIELDS.join(', ')})`);
  if (bins !== undefined && !/^\d{1,9}$/.test(bins)) throw bad(`bins ${JSON.stringify(bins)} is not a whole number`);
  return { field: field as HistogramField, bins: bins === undefined ? null : Number(bins) };
}

const histogramJson = (h: Histogram) => ({ field: h.field, scale: h.scale, edges: h.edges, counts: h.counts });

export function aggregateRoutes(dv: DataVisor) {
  const agg = dv.aggregations;
  return newRouter()
    .openapi(aggregateRoute, async (c) => {
      const q = c.req.valid('query');
      const include = new Set<string>(q.include ?? []);
      const unknown = [...include].filter((p) => !(PARTS as readonly string[]).includes(p));
      if (unknown.length > 0) throw new BadInputError(`query parameter "include": ${unknown.map((p) => JSON.stringify(p)).join(', ')} is not a part; the parts are ${PARTS.join(', ')}`);
      const histograms = (q.histogram ?? []).map(histogramSpec);
      const t = await target(dv, c.req.valid('param').id, q);
      const has = (p: Part) => include.has(p);
      // The parts run side by side (each one statement on a reader of the pool).
      const [counts, categories, splits, labelSets, cooccurrence, hists, metadata] = await Promise.all([
        agg.counts(t),
        has('categories') ? agg.categories(t, { sampleCounts: q.category_samples === true }) : undefined,
        has('splits') ? agg.splits(t) : undefined,
        has('label_sets') ? agg.labelSets(t) : undefined,
        has('cooccurrence') ? agg.cooccurrence(t, q.cooccurrence_limit ?? 20) : undefined,
        Promise.all(histograms.map((h) => agg.histogram(t, h))),
        Promise.all((q.metadata_values ?? []).map(async (path) => ({ path, values: await agg.metadata(t, path, q.metadata_limit ?? 100) }))),
      ]);
      return c.json(
        {
          sample_count: counts.sampleCount,
          annotation_count: counts.annotationCount,
          ...(categories && {
            categories: categories.map((k) => ({ category_id: k.categoryId, name: k.name, count: k.count, ...(k.sampleCount !== null && q.category_samples ? { sample_count: k.sampleCount } : {}) })),
          }),
          ...(splits && { splits }),
          ...(labelSets && { label_sets: labelSets }),
          ...(cooccurrence && { cooccurrence }),
          ...(histograms.length > 0 && { histograms: hists.map(histogramJson) }),
          ...(metadata.length > 0 && { metadata }),
        },
        200,
      );
    })
    .openapi(histogramRoute, async (c) => {
      const q = c.req.valid('query');
      const t = await target(dv, c.req.valid('param').id, q);
      return c.json(histogramJson(await agg.histogram(t, { field: q.field, bins: q.bins, min: q.min, max: q.max, scale: q.scale })), 200);
    });
}
