import type { InputRef } from '@pothos/core';
import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { imagePath } from '../services/datasets/json-views.js';
import { toSampleFilter, filterHash, type SampleFilterInput } from '../services/datasets/filter.js';
import { decodeSampleCursor, encodeSampleCursor, planPage, toConnection, type ConnectionArgs } from '../services/datasets/paging.js';
import type { Annotation, Sample } from '../services/datasets/samples.js';
import type { AnnotationOutcome, SampleOutcome } from '../services/evaluation/evaluations.js';
import type { PredictionRun } from '../services/predictions/predictions.js';
import { NotFoundError } from '../services/errors.js';
import type { ThumbnailSize } from '../services/images/thumbnails.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { DatasetType } from './dataset.js';
import { parseDatasetRef, parseSampleLocalId, sampleLocalId } from './global-ids.js';

export const ThumbnailSizeEnum = builder.enumType('ThumbnailSize', {
  description: 'Thumbnail widths: SMALL 128 px, MEDIUM 256 px, LARGE 512 px (WebP).',
  values: {
    SMALL: { value: 'small' },
    MEDIUM: { value: 'medium' },
    LARGE: { value: 'large' },
  } as const,
});

const SampleOutcomeType = builder.objectRef<SampleOutcome>('SampleOutcome').implement({
  description: 'A sample\'s counts in an evaluation, at IoU 0.5, all areas, 100 detections (an unmatched prediction counts as FP even when its category has no ground truth).',
  fields: (t) => ({ tp: t.exposeInt('tp'), fp: t.exposeInt('fp'), fn: t.exposeInt('fn') }),
});

export const BBoxType = builder.objectRef<{ x: number; y: number; w: number; h: number }>('BBox').implement({
  description: 'A box in pixels of the original image: top-left corner, width and height (COCO order).',
  fields: (t) => ({ x: t.exposeFloat('x'), y: t.exposeFloat('y'), w: t.exposeFloat('w'), h: t.exposeFloat('h') }),
});

export const AnnotationOutcomeType = builder.objectRef<AnnotationOutcome & { datasetId?: string }>('AnnotationOutcome').implement({
  fields: (t) => ({
    outcome: t.exposeString('outcome', { description: 'Predictions: `tp`, `fp`, `ignored` (took a crowd region), `not_evaluated` (past the 100 best); ground truth: `tp`, `fn`, `ignored` (crowd).' }),
    iou: t.exposeFloat('iou', { nullable: true, description: 'A prediction\'s IoU with the object it took, else its best with an object of its category.' }),
    error: t.exposeString('error', { nullable: true, description: 'False positives: `classification`, `localization`, `both`, `duplicate`, `background` (TIDE); missed objects: `missed`.' }),
    matchedPosition: t.int({ nullable: true, description: 'The `position` of the object a prediction took, or of the prediction that took an object (the other end of the match).', resolve: (o) => o.matchedOrd }),
  }),
});

const AnnotationSourceEnum = builder.enumType('AnnotationSource', {
  values: { GROUND_TRUTH: { value: 'ground_truth' }, PREDICTIONS: { value: 'predictions' }, ALL: { value: 'all' } } as const,
});

const AnnotationType = builder.objectRef<Annotation>('Annotation').implement({
  description: 'One annotation of a sample.',
  fields: (t) => ({
    id: t.id({ description: 'Unique across datasets: `<datasetId>:<position in the file>` (COCO files may repeat annotation ids).', resolve: (a) => `${a.datasetId}:${a.ord}` }),
    position: t.exposeInt('ord', { description: 'Unique in the dataset: the position in the annotation file (ground truth), or after it (predictions).' }),
    annotationId: t.field({ type: 'SafeInt', description: 'The annotation id of the file.', resolve: (a) => a.id }),
    categoryId: t.field({ type: 'SafeInt', resolve: (a) => a.categoryId }),
    categoryName: t.exposeString('categoryName', { nullable: true, description: '`null` when the file names a category it does not define.' }),
    bbox: t.field({ type: BBoxType, nullable: true, resolve: (a) => a.bbox }),
    area: t.exposeFloat('area', { nullable: true }),
    isCrowd: t.exposeBoolean('isCrowd'),
    source: t.exposeString('source', { description: '`ground_truth`, or `prediction` for an annotation with a score.' }),
    confidence: t.exposeFloat('score', { nullable: true, description: 'The score of a prediction; `null` for ground truth.' }),
    segmentationKind: t.exposeString('segmentationKind', { description: '`polygon`, `rle`, `compressed_rle` or `none`.' }),
    polygonCount: t.exposeInt('polygonCount'),
    pointCount: t.exposeInt('pointCount'),
    segmentation: t.expose('segmentation', {
      type: 'JSON',
      nullable: true,
      description: 'Polygons or RLE as in the file; `null` unless the dataset was ingested with `storeShapes`. Selecting it (or `keypoints`) costs one more query per page.',
    }),
    numKeypoints: t.exposeInt('numKeypoints', { nullable: true }),
    keypoints: t.exposeFloatList('keypoints', { nullable: true, description: 'As `segmentation`: stored with `storeShapes` only.' }),
    predictions: t.string({
      nullable: true,
      description: 'The prediction run it belongs to; null for ground truth.',
      resolve: async (a, _args, ctx) => (a.labelSet === 0 ? null : ((await runsOf(ctx, a.datasetId)).find((r) => r.labelSet === a.labelSet)?.name ?? null)),
    }),
    evaluation: t.loadable({
      type: AnnotationOutcomeType,
      nullable: true,
      description: 'Its part in an evaluation (IoU 0.5, all areas, 100 detections); null when the evaluation did not see it (another run). One query per page and evaluation.',
      args: { id: t.arg.id({ required: true, description: 'The evaluation\'s id.' }) },
      byPath: true,
      load: (keys: string[], ctx) => loadAnnotationOutcomes(keys, ctx),
      resolve: (a, args) => `${String(args.id)}|${a.datasetId}|${a.ord}`,
    }),
  }),
});

/** Prediction runs of a dataset, looked up once per request (names of annotations' label sets). */
function runsOf(ctx: GraphQLContext, datasetId: string): Promise<PredictionRun[]> {
  const cache = (ctx.runs ??= new Map());
  let runs = cache.get(datasetId);
  if (!runs) cache.set(datasetId, (runs = ctx.dv.predictions.list(datasetId)));
  return runs;
}

/** Outcomes by `<evaluation>|<dataset>|<ord>`: one query per evaluation; NOT_FOUND for an evaluation of another dataset. */
export async function loadAnnotationOutcomes(keys: string[], ctx: GraphQLContext): Promise<(AnnotationOutcome | null | Error)[]> {
  const found = new Map<string, AnnotationOutcome | null | Error>();
  await Promise.all(
    [...byDataset(keys, (k) => k.slice(0, k.lastIndexOf('|')))].map(async ([group, members]) => {
      const [evaluationId, datasetId] = group.split('|') as [string, string];
      try {
        await ctx.dv.evaluations.get(datasetId, evaluationId);
        const outcomes = await ctx.dv.evaluations.annotationOutcomes(evaluationId, members.map((k) => Number(k.slice(k.lastIndexOf('|') + 1))));
        members.forEach((k, i) => found.set(k, outcomes[i]!));
      } catch (e) {
        for (const k of members) found.set(k, e as Error);
      }
    }),
  );
  return keys.map((k) => found.get(k)!);
}

/** DataLoader key of Sample.annotations: a sample is addressed by (dataset, ord). */
const annotationKey = (s: Sample) => `${s.datasetId}:${s.ord}`;

/** Values grouped by dataset, each group in the order given: one service call per group. */
function byDataset<T>(items: readonly T[], datasetOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const id = datasetOf(item);
    const group = groups.get(id);
    if (group) group.push(item);
    else groups.set(id, [item]);
  }
  return groups;
}

export const SampleType = builder.loadableNode('Sample', {
  description: 'One image of a dataset.',
  id: { resolve: (s) => sampleLocalId(s.datasetId, s.id) },
  load: loadSamples,
  fields: (t) => ({
    sampleId: t.field({ type: 'SafeInt', description: 'The image id of the file: the id REST uses (`/images/{datasetId}/{sampleId}`).', resolve: (s) => s.id }),
    datasetId: t.exposeID('datasetId'),
    position: t.exposeInt('ord', { description: 'Position in the annotation file (0-based): the order of every listing.' }),
    fileName: t.exposeString('fileName'),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    split: t.exposeString('split', { nullable: true }),
    annotationCount: t.exposeInt('annotationCount'),
    fileMissing: t.exposeBoolean('fileMissing', { description: 'The image file was not in the image folder at ingest.' }),
    licenseId: t.field({ type: 'SafeInt', nullable: true, resolve: (s) => s.licenseId }),
    cocoUrl: t.exposeString('cocoUrl', { nullable: true }),
    flickrUrl: t.exposeString('flickrUrl', { nullable: true }),
    dateCaptured: t.exposeString('dateCaptured', { nullable: true }),
    metadata: t.expose('metadata', { type: 'JSON', nullable: true, description: 'Non-standard image fields of the file, and what plugins added.' }),
    thumbnailUrl: t.string({
      description: 'Absolute URL of a WebP thumbnail (REST `/images`), usable as it is in `<img>`.',
      args: { size: t.arg({ type: ThumbnailSizeEnum, defaultValue: 'medium' }) },
      resolve: (s, args, ctx) => imageUrl(ctx, s, args.size ?? 'medium'),
    }),
    imageUrl: t.string({ description: 'Absolute URL of the original image file.', resolve: (s, _args, ctx) => imageUrl(ctx, s, 'original') }),
    annotations: t.loadableList({
      type: AnnotationType,
      description: 'In file order: the ground truth (default), the predictions of every run or of those named, or all. One query loads the annotations of every sample of a page (one more when shapes are selected, one for run names).',
      args: {
        source: t.arg({ type: AnnotationSourceEnum, defaultValue: 'ground_truth' }),
        predictions: t.arg.stringList({ description: 'Prediction runs to include (by name); with it, `source` defaults to predictions and ground truth is added only with ALL.' }),
        minConfidence: t.arg.float({ description: 'Leave out predictions scored below this.' }),
      },
      // One loader per place in the query, so that it knows its arguments and whether that selection wants shapes.
      byPath: true,
      load: (samples: Sample[], ctx, args, info) => loadAnnotations(samples, ctx, selectsShapes(info), args),
      loaderOptions: { cacheKeyFn: annotationKey },
      resolve: (s) => s,
    }),
    dataset: t.field({ type: DatasetType, resolve: (s) => s.datasetId }),
    evaluation: t.loadable({
      type: SampleOutcomeType,
      description: 'The sample\'s true positives, false positives and missed objects in an evaluation (IoU 0.5, all areas, 100 detections). One query per page and evaluation.',
      args: { id: t.arg.id({ required: true, description: 'The evaluation\'s id.' }) },
      byPath: true,
      load: (keys: string[], ctx) => loadOutcomes(keys, ctx),
      resolve: (s, args) => `${String(args.id)}|${s.datasetId}|${s.ord}`,
    }),
  }),
});

/** Outcomes by `<evaluation>|<dataset>|<ord>`: one query per evaluation; NOT_FOUND for an evaluation of another dataset. */
async function loadOutcomes(keys: string[], ctx: GraphQLContext): Promise<(SampleOutcome | Error)[]> {
  const groups = byDataset(keys, (k) => k.slice(0, k.lastIndexOf('|')));
  const found = new Map<string, SampleOutcome | Error>();
  await Promise.all(
    [...groups].map(async ([group, members]) => {
      const [evaluationId, datasetId] = group.split('|') as [string, string];
      const ords = members.map((k) => Number(k.slice(k.lastIndexOf('|') + 1)));
      try {
        await ctx.dv.evaluations.get(datasetId, evaluationId);
        const outcomes = await ctx.dv.evaluations.sampleOutcomes(evaluationId, ords);
        members.forEach((k, i) => found.set(k, outcomes[i]!));
      } catch (e) {
        for (const k of members) found.set(k, e as Error);
      }
    }),
  );
  return keys.map((k) => found.get(k)!);
}

function imageUrl(ctx: GraphQLContext, s: Sample, size: ThumbnailSize | 'original'): string {
  return ctx.origin + imagePath(s.datasetId, s.id, size, ctx.dv.access);
}

/** Sample nodes by local id, one query per dataset; an Error for a malformed or unknown key. */
async function loadSamples(keys: string[], ctx: GraphQLContext): Promise<(Sample | Error)[]> {
  const parsed = keys.map((k) => {
    try {
      return parseSampleLocalId(k);
    } catch (e) {
      return e as Error;
    }
  });
  const valid = parsed.filter((p): p is { datasetId: string; sampleId: number } => !(p instanceof Error));
  const found = new Map<string, Sample | Error>();
  await Promise.all(
    [...byDataset(valid, (p) => p.datasetId)].map(async ([datasetId, keys]) => {
      const ids = keys.map((k) => k.sampleId);
      const samples = await ctx.dv.samples.getMany(datasetId, ids);
      samples.forEach((s, i) => found.set(sampleLocalId(datasetId, ids[i]!), s));
    }),
  );
  return parsed.map((p) => (p instanceof Error ? p : found.get(sampleLocalId(p.datasetId, p.sampleId))!));
}

const SHAPE_FIELDS = new Set(['segmentation', 'keypoints']);

/** Whether the selection under this field asks for polygons/RLE/keypoints (through fragments too). */
function selectsShapes(info: GraphQLResolveInfo): boolean {
  const visit = (set: SelectionSetNode | undefined): boolean =>
    (set?.selections ?? []).some((sel) => {
      if (sel.kind === Kind.FIELD) return SHAPE_FIELDS.has(sel.name.value);
      if (sel.kind === Kind.INLINE_FRAGMENT) return visit(sel.selectionSet);
      return visit(info.fragments[sel.name.value]?.selectionSet);
    });
  return info.fieldNodes.some((node) => visit(node.selectionSet));
}

interface AnnotationArgs {
  source?: 'ground_truth' | 'predictions' | 'all' | null;
  predictions?: readonly string[] | null;
  minConfidence?: number | null;
}

/** The label sets the arguments ask for (run names resolved once per request); NOT_FOUND for an unknown run. */
async function labelSetsOf(ctx: GraphQLContext, datasetId: string, args: AnnotationArgs): Promise<number[]> {
  const source = args.predictions && args.source === 'ground_truth' ? 'predictions' : (args.source ?? 'ground_truth');
  if (source === 'ground_truth') return [0];
  const runs = await runsOf(ctx, datasetId);
  let chosen = runs;
  if (args.predictions) {
    chosen = args.predictions.map((name) => {
      const run = runs.find((r) => r.name === name);
      if (!run) throw new NotFoundError(`prediction run of dataset ${datasetId}`, name);
      return run;
    });
  }
  return [...(source === 'all' ? [0] : []), ...chosen.map((r) => r.labelSet)];
}

/** Annotations of many samples: one service call per dataset among the keys, in key order. */
async function loadAnnotations(samples: Sample[], ctx: GraphQLContext, shapes: boolean, args: AnnotationArgs): Promise<Annotation[][]> {
  const lists = new Map<string, Annotation[]>();
  await Promise.all(
    [...byDataset(samples, (s) => s.datasetId)].map(async ([datasetId, group]) => {
      const labelSets = await labelSetsOf(ctx, datasetId, args);
      const grouped = await ctx.dv.samples.annotationsOf(datasetId, group.map((s) => s.ord), { shapes, labelSets, minScore: args.minConfidence ?? undefined });
      grouped.forEach((list, i) => lists.set(annotationKey(group[i]!), list));
    }),
  );
  return samples.map((s) => lists.get(annotationKey(s)) ?? []);
}

const EvalOutcomeEnum = builder.enumType('EvalOutcome', {
  description: 'Outcomes at IoU 0.5, all areas, 100 detections: a true positive, a false positive, a missed object (false negative).',
  values: { TP: { value: 'tp' }, FP: { value: 'fp' }, FN: { value: 'fn' } } as const,
});

const EvaluationFilterInput = builder.inputType('EvaluationFilter', {
  description: 'Samples with at least one of the outcomes in an evaluation.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The evaluation\'s id.' }),
    has: t.field({ type: [EvalOutcomeEnum], description: 'Any of these; all three when absent.' }),
  }),
});

const SampleFilterInput: InputRef<SampleFilterInput> = builder.inputRef<SampleFilterInput>('SampleFilter').implement({
  description: 'Which samples to list; every given field must hold (AND). Category names are matched exactly.',
  fields: (t) => ({
    category: t.string({ description: 'The sample has an annotation in this category. Merged with `categories`: any of the names matches.' }),
    categories: t.stringList({ description: 'The sample has at least one annotation in any of these categories.' }),
    split: t.string(),
    fileNameContains: t.string({ description: 'Case-sensitive substring of the file name.' }),
    minAnnotations: t.int({ description: 'At least this many annotations.' }),
    maxAnnotations: t.int({ description: 'At most this many annotations.' }),
    isCrowd: t.boolean({ description: 'The sample has an annotation with this crowd flag.' }),
    minBboxArea: t.float({ description: 'The sample has an annotation whose box (w × h, px²) is at least this large; with the other annotation conditions, one annotation must meet them all.' }),
    maxBboxArea: t.float({ description: 'The sample has an annotation whose box (w × h, px²) is at most this large.' }),
    fileMissing: t.boolean({ description: 'The image file was (true) or was not (false) missing at ingest.' }),
    evaluation: t.field({ type: EvaluationFilterInput, description: 'Samples with a TP, FP or FN (or those of `has`) in an evaluation.' }),
  }),
});

/** One page of a dataset's samples; the dataset comes through its DataLoader, so an unknown id is NOT_FOUND. */
async function samplesConnection(ctx: GraphQLContext, datasetId: string, filterInput: SampleFilterInput | null | undefined, args: ConnectionArgs) {
  const filter = toSampleFilter(filterInput, (field) => `filter.${field}`);
  const dataset = await DatasetType.getDataloader(ctx).load(datasetId);
  const scope = { datasetId, revision: dataset.revision, filterHash: filterHash(filter) };
  const plan = planPage(args, (arg, cursor) => decodeSampleCursor(arg, cursor, scope));
  const window =
    plan.direction === 'forward'
      ? { kind: 'after' as const, afterOrd: plan.cursor, limit: plan.limit }
      : { kind: 'before' as const, beforeOrd: plan.cursor, limit: plan.limit };
  const page = await ctx.dv.samples.page(datasetId, filter, window);
  return toConnection(plan, page.samples, page.hasMore, (s) => encodeSampleCursor(scope, s.ord), () => ctx.dv.samples.count(datasetId, filter));
}

/** The SampleFilter input type, for other connections limited to samples (schema/objects.ts). */
export const SampleFilterType: InputRef<SampleFilterInput> = SampleFilterInput;

export const SampleConnection = builder.connectionObject({ type: SampleType, name: 'SampleConnection' }, { name: 'SampleEdge' });

builder.queryFields((t) => ({
  samples: t.connection(
    {
      type: SampleType,
      description: 'Samples of a dataset in file order. NOT_FOUND for an unknown dataset; `first`/`last` at most 200.',
      args: {
        datasetId: t.arg.id({ required: true, description: 'The dataset id (REST) or the global id of the dataset.' }),
        filter: t.arg({ type: SampleFilterInput }),
      },
      resolve: (_root, args, ctx) => samplesConnection(ctx, parseDatasetRef(String(args.datasetId)), args.filter, args),
    },
    SampleConnection,
  ),
}));

builder.objectField(DatasetType, 'samples', (t) =>
  t.connection(
    {
      type: SampleType,
      description: 'The samples of this dataset in file order; `first`/`last` at most 200.',
      args: { filter: t.arg({ type: SampleFilterInput }) },
      resolve: (dataset, args, ctx) => samplesConnection(ctx, dataset.id, args.filter, args),
    },
    SampleConnection,
  ),
);
