import type { Evaluation } from '../services/evaluation/evaluations.js';
import { builder } from './builder.js';
import { DatasetType } from './dataset.js';
import { parseDatasetRef } from './global-ids.js';

const IouTypeEnum = builder.enumType('IouType', {
  description: 'What COCO evaluation compares: boxes or masks. Spelt as REST and pycocotools spell them.',
  values: { bbox: { value: 'bbox' }, segm: { value: 'segm' } } as const,
});

type Metrics = Record<string, number>;
const MetricsType = builder.objectRef<Metrics>('EvaluationMetrics').implement({
  description: 'pycocotools\' 12 summary numbers; -1 where it prints -1 (no ground truth in that area range).',
  fields: (t) => ({
    ap: t.float({ description: 'AP @[IoU=0.50:0.95, area=all, maxDets=100]', resolve: (m) => m.ap! }),
    ap50: t.float({ resolve: (m) => m.ap50! }),
    ap75: t.float({ resolve: (m) => m.ap75! }),
    apSmall: t.float({ resolve: (m) => m.ap_small! }),
    apMedium: t.float({ resolve: (m) => m.ap_medium! }),
    apLarge: t.float({ resolve: (m) => m.ap_large! }),
    ar1: t.float({ resolve: (m) => m.ar1! }),
    ar10: t.float({ resolve: (m) => m.ar10! }),
    ar100: t.float({ resolve: (m) => m.ar100! }),
    arSmall: t.float({ resolve: (m) => m.ar_small! }),
    arMedium: t.float({ resolve: (m) => m.ar_medium! }),
    arLarge: t.float({ resolve: (m) => m.ar_large! }),
  }),
});

interface CategoryRow { category_id: number; name: string | null; ap: number; ap50: number; ap75: number; ar100: number }
const CategoryMetricsType = builder.objectRef<CategoryRow>('CategoryMetrics').implement({
  description: 'One ground-truth category: AP over IoU 0.50:0.95 and 101 recall points (area all, 100 detections), AP50, AP75, AR100; -1 without non-crowd ground truth.',
  fields: (t) => ({
    categoryId: t.field({ type: 'SafeInt', description: 'The dataset\'s own category id.', resolve: (c) => c.category_id }),
    name: t.string({ nullable: true, resolve: (c) => c.name }),
    ap: t.float({ resolve: (c) => c.ap }),
    ap50: t.float({ resolve: (c) => c.ap50 }),
    ap75: t.float({ resolve: (c) => c.ap75 }),
    ar100: t.float({ resolve: (c) => c.ar100 }),
  }),
});

const TotalsType = builder.objectRef<Record<string, number>>('EvaluationTotals').implement({
  description: 'Outcomes at IoU 0.5, area all, 100 detections per image and category.',
  fields: (t) => ({
    tp: t.int({ resolve: (x) => x.tp ?? 0 }),
    fp: t.int({ resolve: (x) => x.fp ?? 0 }),
    fn: t.int({ resolve: (x) => x.fn ?? 0 }),
    ignoredDetections: t.int({ description: 'Matched a crowd region: neither TP nor FP.', resolve: (x) => x.ignoredDetections ?? 0 }),
    notEvaluatedDetections: t.int({ description: 'Past the 100 best of their image and category, or of a category the ground truth lacks.', resolve: (x) => x.notEvaluatedDetections ?? 0 }),
  }),
});

const ErrorCountsType = builder.objectRef<Record<string, number>>('EvaluationErrors').implement({
  description: 'False positives by TIDE error kind, and missed ground truth, at IoU 0.5.',
  fields: (t) => ({
    classification: t.int({ resolve: (x) => x.classification ?? 0 }),
    localization: t.int({ resolve: (x) => x.localization ?? 0 }),
    both: t.int({ resolve: (x) => x.both ?? 0 }),
    duplicate: t.int({ resolve: (x) => x.duplicate ?? 0 }),
    background: t.int({ resolve: (x) => x.background ?? 0 }),
    missed: t.int({ resolve: (x) => x.missed ?? 0 }),
  }),
});

interface Confusion { category_ids: number[]; matrix: number[][] }
interface ConfusionRow { categoryId: number | null; counts: number[] }
const ConfusionRowType = builder.objectRef<ConfusionRow>('ConfusionRow').implement({
  fields: (t) => ({
    categoryId: t.field({ type: 'SafeInt', nullable: true, description: 'The ground-truth category; null for the background row.', resolve: (r) => r.categoryId }),
    counts: t.intList({ description: 'One count per predicted category (in `categoryIds` order), then background.', resolve: (r) => r.counts }),
  }),
});
const ConfusionType = builder.objectRef<Confusion>('ConfusionMatrix').implement({
  description: 'At IoU 0.5. Rows: ground-truth category (in `categoryIds` order) then background; columns: predicted category then background. The background row counts unmatched predictions, the background column missed objects.',
  fields: (t) => ({
    categoryIds: t.field({ type: ['SafeInt'], resolve: (c) => c.category_ids }),
    rows: t.field({ type: [ConfusionRowType], resolve: (c) => c.matrix.map((counts, i) => ({ categoryId: c.category_ids[i] ?? null, counts })) }),
  }),
});

interface Curve { categoryId: number; iou: number; precision: number[]; scores: number[] }
const CurveType = builder.objectRef<Curve>('PrecisionRecallCurve').implement({
  description: 'pycocotools\' accumulated precision at the 101 recall points 0, 0.01 … 1 (area all, 100 detections), with the score where each is reached: a UI picks an operating threshold from it. -1 throughout without non-crowd ground truth.',
  fields: (t) => ({
    categoryId: t.field({ type: 'SafeInt', resolve: (c) => c.categoryId }),
    iouThreshold: t.float({ resolve: (c) => c.iou }),
    precision: t.floatList({ resolve: (c) => c.precision }),
    scores: t.floatList({ resolve: (c) => c.scores }),
  }),
});

export const EvaluationType = builder.objectRef<Evaluation>('Evaluation').implement({
  description: 'COCO detection evaluation of a prediction run, with the numbers of pycocotools\' COCOeval.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The evaluation\'s id (REST /datasets/{id}/evaluations/{evaluation_id}).' }),
    datasetId: t.exposeID('datasetId'),
    predictions: t.exposeString('predictions', { description: 'The prediction run\'s name.' }),
    iouType: t.field({ type: IouTypeEnum, resolve: (e) => e.iouType as 'bbox' | 'segm' }),
    stale: t.exposeBoolean('stale', { description: 'The ground truth or the run changed since: evaluate again.' }),
    metrics: t.field({ type: MetricsType, resolve: (e) => e.metrics }),
    perCategory: t.field({ type: [CategoryMetricsType], resolve: (e) => e.perCategory as CategoryRow[] }),
    totals: t.field({ type: TotalsType, resolve: (e) => e.totals }),
    errors: t.field({ type: ErrorCountsType, resolve: (e) => e.errors }),
    confusionMatrix: t.field({ type: ConfusionType, resolve: (e) => e.confusion as Confusion }),
    curves: t.field({
      type: [CurveType],
      description: 'Every category and IoU threshold, or those asked for.',
      args: { categoryId: t.arg({ type: 'SafeInt' }), iouThreshold: t.arg.float({ description: 'One of 0.5, 0.55 … 0.95.' }) },
      resolve: async (e, args, ctx) => {
        const thresholds = ctx.dv.evaluations.iouThresholds;
        return (await ctx.dv.evaluations.curves(e.datasetId, e.id))
          .filter((c) => args.categoryId == null || c.categoryId === args.categoryId)
          .filter((c) => args.iouThreshold == null || Math.abs(thresholds[c.iouIndex]! - args.iouThreshold) < 1e-6)
          .map((c) => ({ categoryId: c.categoryId, iou: thresholds[c.iouIndex]!, precision: c.precision, scores: c.scores }));
      },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    seconds: t.exposeFloat('seconds'),
  }),
});

builder.objectField(DatasetType, 'evaluations', (t) =>
  t.field({ type: [EvaluationType], description: 'Oldest first.', resolve: (d, _args, ctx) => ctx.dv.evaluations.list(d.id) }),
);

const EvaluateInput = builder.inputType('EvaluateInput', {
  fields: (t) => ({
    datasetId: t.id({ required: true }),
    predictions: t.string({ required: true, description: 'The name of a prediction run of the dataset.' }),
    iouType: t.field({ type: IouTypeEnum, defaultValue: 'bbox' }),
  }),
});

builder.mutationFields((t) => ({
  evaluate: t.field({
    type: EvaluationType,
    description: 'Evaluates a prediction run against the ground truth and stores every outcome. NOT_FOUND for an unknown dataset or run; FAILED_PRECONDITION for segm on a dataset ingested without shapes.',
    args: { input: t.arg({ type: EvaluateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.dv.evaluations.evaluate({ datasetId: parseDatasetRef(String(input.datasetId)), predictions: input.predictions, iouType: input.iouType ?? 'bbox' }),
  }),
  deleteEvaluation: t.id({
    description: 'Deletes an evaluation and its outcomes; returns its id.',
    args: { datasetId: t.arg.id({ required: true }), id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await ctx.dv.evaluations.delete(parseDatasetRef(String(args.datasetId)), String(args.id));
      return args.id;
    },
  }),
}));
