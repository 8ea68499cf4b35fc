import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import type { AggregateTarget, CategoryCount, Histogram } from '../services/aggregate/aggregations.js';
import { toSampleFilter } from '../services/datasets/filter.js';
import { builder } from './builder.js';
import { DatasetType } from './dataset.js';
import { SampleFilterArg, VIEW_ID_ARG } from './sample.js';

const HistogramFieldEnum = builder.enumType('HistogramField', {
  description: 'What a histogram counts. Per annotation (of the ground truth, or of `predictions`): BBOX_AREA (w × h, px²), ASPECT_RATIO (w / h), RELATIVE_SIZE (sqrt(box area / image area): a length ratio, 0..1 for a box inside its image), SCORE (needs `predictions`). Per sample: ANNOTATIONS_PER_SAMPLE, WIDTH, HEIGHT, PIXELS (width × height).',
  values: {
    BBOX_AREA: { value: 'bbox_area' },
    ASPECT_RATIO: { value: 'aspect_ratio' },
    RELATIVE_SIZE: { value: 'relative_size' },
    SCORE: { value: 'score' },
    ANNOTATIONS_PER_SAMPLE: { value: 'annotations_per_sample' },
    WIDTH: { value: 'width' },
    HEIGHT: { value: 'height' },
    PIXELS: { value: 'pixels' },
  } as const,
});

const HistogramScaleEnum = builder.enumType('HistogramScale', {
  description: 'LINEAR: bins of equal width; LOG: bins of equal width in ln(value), values ≤ 0 not counted.',
  values: { LINEAR: { value: 'linear' }, LOG: { value: 'log' } } as const,
});

const HistogramType = builder.objectRef<Histogram>('Histogram').implement({
  description: 'numpy.histogram\'s semantics: `edges` has one value more than `counts`; bin i holds edges[i] ≤ v < edges[i+1], the last bin also v = its upper edge.',
  fields: (t) => ({
    field: t.field({ type: HistogramFieldEnum, resolve: (h) => h.field }),
    scale: t.field({ type: HistogramScaleEnum, resolve: (h) => h.scale }),
    edges: t.floatList({ resolve: (h) => h.edges }),
    counts: t.intList({ resolve: (h) => h.counts }),
  }),
});

const CategoryCountType = builder.objectRef<CategoryCount>('CategoryCount').implement({
  fields: (t) => ({
    categoryId: t.field({ type: 'SafeInt', resolve: (c) => c.categoryId }),
    name: t.exposeString('name'),
    count: t.exposeInt('count', { description: 'Annotations of the category in the selected samples.' }),
    sampleCount: t.int({ description: 'Selected samples with at least one.', resolve: (c) => c.sampleCount ?? 0 }),
  }),
});

const SplitCountType = builder.objectRef<{ name: string | null; count: number }>('SplitCount').implement({
  fields: (t) => ({ name: t.exposeString('name', { nullable: true, description: 'null: samples without a split.' }), count: t.exposeInt('count') }),
});

const LabelSetCountType = builder.objectRef<{ name: string; kind: string; count: number }>('LabelSetCount').implement({
  fields: (t) => ({
    name: t.exposeString('name', { description: '`ground_truth`, or the prediction run\'s name.' }),
    kind: t.exposeString('kind', { description: '`ground_truth` or `predictions`.' }),
    count: t.exposeInt('count', { description: 'Its annotations in the selected samples.' }),
  }),
});

const CategoryPairType = builder.objectRef<{ a: string; b: string; count: number }>('CategoryPair').implement({
  fields: (t) => ({ a: t.exposeString('a'), b: t.exposeString('b'), count: t.exposeInt('count', { description: 'Selected samples holding both.' }) }),
});

const MetadataValueType = builder.objectRef<{ value: unknown; count: number }>('MetadataValue').implement({
  fields: (t) => ({
    value: t.expose('value', { type: 'JSON', nullable: true, description: 'null also counts the samples without the path.' }),
    count: t.exposeInt('count'),
  }),
});

const AggregationType = builder.objectRef<AggregateTarget>('Aggregation').implement({
  description: 'Counts and histograms over the samples a filter selects (docs/curation.md). Annotation-level parts count the ground truth, or the prediction run `aggregate(predictions:)` names. Each field is one SQL statement, run only when selected.',
  fields: (t) => ({
    sampleCount: t.int({ resolve: async (a, _args, ctx) => (await ctx.dv.aggregations.counts(a)).sampleCount }),
    annotationCount: t.int({ resolve: async (a, _args, ctx) => (await ctx.dv.aggregations.counts(a)).annotationCount }),
    categories: t.field({
      type: [CategoryCountType],
      description: 'Categories with an annotation in the selected samples, most annotations first.',
      resolve: (a, _args, ctx, info) => ctx.dv.aggregations.categories(a, { sampleCounts: selects(info, 'sampleCount') }),
    }),
    splits: t.field({ type: [SplitCountType], description: 'Selected samples per split, most first.', resolve: (a, _args, ctx) => ctx.dv.aggregations.splits(a) }),
    labelSets: t.field({
      type: [LabelSetCountType],
      description: 'Every label set (ground truth, then prediction runs) with its annotations in the selected samples.',
      resolve: (a, _args, ctx) => ctx.dv.aggregations.labelSets(a),
    }),
    cooccurrence: t.field({
      type: [CategoryPairType],
      description: 'Pairs of categories found in the same sample, with how many selected samples hold both; most first.',
      args: { limit: t.arg.int({ defaultValue: 20, description: 'At most this many pairs (1..1000).' }) },
      resolve: (a, args, ctx) => ctx.dv.aggregations.cooccurrence(a, args.limit ?? 20),
    }),
    histogram: t.field({
      type: HistogramType,
      args: {
        field: t.arg({ type: HistogramFieldEnum, required: true }),
        bins: t.arg.int({ description: '1..1000; left out: Sturges\' rule, ceil(log2(n) + 1).' }),
        min: t.arg.float({ description: 'With `max`: the range binned (values outside are not counted); left out, the data\'s own.' }),
        max: t.arg.float(),
        scale: t.arg({ type: HistogramScaleEnum, defaultValue: 'linear' }),
      },
      resolve: (a, args, ctx) => ctx.dv.aggregations.histogram(a, args),
    }),
    metadata: t.field({
      type: [MetadataValueType],
      description: 'Distinct values at a path of the samples\' metadata (`camera.model`, `tags[0]`) with how many selected samples have each; most first.',
      args: { path: t.arg.string({ required: true }), limit: t.arg.int({ defaultValue: 100, description: 'At most this many values (1..1000).' }) },
      resolve: (a, args, ctx) => ctx.dv.aggregations.metadata(a, args.path, args.limit ?? 100),
    }),
  }),
});

/** Whether the selection under this field names `name` (through fragments too). */
function selects(info: GraphQLResolveInfo, name: string): boolean {
  const visit = (set: SelectionSetNode | undefined): boolean =>
    (set?.selections ?? []).some((sel) => {
      if (sel.kind === Kind.FIELD) return sel.name.value === name;
      if (sel.kind === Kind.INLINE_FRAGMENT) return visit(sel.selectionSet);
      return visit(info.fragments[sel.name.value]?.selectionSet);
    });
  return info.fieldNodes.some((node) => visit(node.selectionSet));
}

builder.objectField(DatasetType, 'aggregate', (t) =>
  t.field({
    type: AggregationType,
    description: 'Aggregations over the samples `filter` (and the saved view `viewId`) select (all when absent). NOT_FOUND for an unknown prediction run or view.',
    args: {
      filter: t.arg({ type: SampleFilterArg }),
      viewId: VIEW_ID_ARG(t),
      predictions: t.arg.string({ description: 'Annotation-level parts count this prediction run instead of the ground truth.' }),
    },
    resolve: async (dataset, args, ctx) =>
      ctx.dv.aggregations.target(dataset.id, await ctx.dv.views.filterOf(dataset.id, args.viewId?.toString(), toSampleFilter(args.filter, (field) => `filter.${field}`)), args.predictions),
  }),
);
