import { objectCropPath } from '../services/datasets/json-views.js';
import { toSampleFilter, type SampleFilterInput } from '../services/datasets/filter.js';
import { toObjectFilter, toObjectSort, type ObjectFilterInput } from '../services/objects/object-filter.js';
import type { DatasetObject } from '../services/objects/objects.js';
import { builder } from './builder.js';
import { CategoryType, DatasetType } from './dataset.js';
import { sampleLocalId } from './global-ids.js';
import { AnnotationOutcomeType, BBoxType, loadAnnotationOutcomes, SampleFilterType, SampleType, ThumbnailSizeEnum, VIEW_ID_ARG } from './sample.js';

/** The object view (docs/curation.md, "Objects"): a dataset's annotations as rows. */

const ObjectOutcomeEnum = builder.enumType('ObjectOutcome', {
  description: 'An object\'s outcome in an evaluation (IoU 0.5, all areas, 100 detections). Predictions: TP, FP, IGNORED (took a crowd region), NOT_EVALUATED (past the 100 best); ground truth: TP, FN (missed), IGNORED (crowd).',
  values: { TP: { value: 'tp' }, FP: { value: 'fp' }, FN: { value: 'fn' }, IGNORED: { value: 'ignored' }, NOT_EVALUATED: { value: 'not_evaluated' } } as const,
});

const ObjectErrorEnum = builder.enumType('ObjectError', {
  description: 'TIDE\'s error kinds of false positives, and MISSED for ground truth no prediction took.',
  values: {
    CLASSIFICATION: { value: 'classification' }, LOCALIZATION: { value: 'localization' }, BOTH: { value: 'both' },
    DUPLICATE: { value: 'duplicate' }, BACKGROUND: { value: 'background' }, MISSED: { value: 'missed' },
  } as const,
});

const ObjectEvaluationFilter = builder.inputType('ObjectEvaluationFilter', {
  description: 'Only objects the evaluation saw; with `outcomes` or `errors`, only those (any of each list).',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The evaluation\'s id.' }),
    outcomes: t.field({ type: [ObjectOutcomeEnum] }),
    errors: t.field({ type: [ObjectErrorEnum] }),
  }),
});

const ObjectFilterType = builder.inputRef<ObjectFilterInput>('ObjectFilter').implement({
  description: 'Which annotations of the selected samples are rows; every given field must hold (AND).',
  fields: (t) => ({
    categories: t.stringList({ description: 'In any of these categories (names).' }),
    labelSet: t.string({ description: '`ground_truth` (the default) or a prediction run\'s name. With `evaluation`, the evaluated run unless `ground_truth` is named (for missed objects).' }),
    minArea: t.float({ description: 'COCO `area` (the segment\'s for ground truth, the box\'s for predictions) at least this, px².' }),
    maxArea: t.float(),
    minConfidence: t.float({ description: 'Prediction score at least this (ground truth has none and never matches).' }),
    maxConfidence: t.float(),
    isCrowd: t.boolean(),
    evaluation: t.field({ type: ObjectEvaluationFilter }),
  }),
});

const ObjectSortField = builder.enumType('ObjectSortField', {
  values: {
    FILE_ORDER: { value: 'file', description: 'The samples\' file order, then the annotations\' position.' },
    AREA: { value: 'area' },
    CONFIDENCE: { value: 'confidence' },
    IOU: { value: 'iou', description: 'A prediction\'s IoU in the filter\'s evaluation (needs one).' },
  } as const,
});

const SortDirection = builder.enumType('ObjectSortDirection', { values: { ASC: { value: 'asc' }, DESC: { value: 'desc' } } as const });

const ObjectSortInput = builder.inputType('ObjectSort', {
  description: 'Missing values (a ground-truth score, an IoU without a same-category object) sort first ascending; ties go by position, in the same direction.',
  fields: (t) => ({
    field: t.field({ type: ObjectSortField, required: true }),
    direction: t.field({ type: SortDirection, defaultValue: 'asc' }),
  }),
});

export const ObjectType = builder.objectRef<DatasetObject>('DatasetObject').implement({
  description: 'One annotation as a row of the object view, with its sample and a crop of its box.',
  fields: (t) => ({
    id: t.id({ description: '`<datasetId>:<position>`, as `Annotation.id`.', resolve: (o) => `${o.datasetId}:${o.ord}` }),
    position: t.exposeInt('ord', { description: 'Unique in the dataset: the annotation\'s position (crop URLs address it).' }),
    annotationId: t.field({ type: 'SafeInt', resolve: (o) => o.annotationId }),
    category: t.field({
      type: CategoryType,
      nullable: true,
      description: 'null when the file names a category it does not define.',
      resolve: async (o, _args, ctx) => (await ctx.dv.datasets.categories(o.datasetId)).find((c) => c.categoryId === o.categoryId) ?? null,
    }),
    bbox: t.field({ type: BBoxType, nullable: true, resolve: (o) => o.bbox }),
    area: t.exposeFloat('area', { nullable: true }),
    isCrowd: t.exposeBoolean('isCrowd'),
    confidence: t.exposeFloat('score', { nullable: true, description: 'A prediction\'s score; null for ground truth.' }),
    labelSet: t.exposeString('labelSetName', { description: '`ground_truth` or the prediction run\'s name.' }),
    sample: t.field({ type: SampleType, description: 'Loaded for the whole page at once.', resolve: (o) => sampleLocalId(o.datasetId, o.sampleId) }),
    cropUrl: t.string({
      description: 'Absolute URL of a WebP crop of the box (REST `/images/{datasetId}/{sampleId}/objects/{position}`), usable as it is in `<img>`; cached for good while the dataset is unchanged.',
      args: { size: t.arg({ type: ThumbnailSizeEnum, defaultValue: 'medium' }) },
      resolve: (o, args, ctx) => ctx.origin + objectCropPath(o.datasetId, o.sampleId, o.ord, o.revision, args.size ?? 'medium', ctx.dv.access),
    }),
    evaluation: t.loadable({
      type: AnnotationOutcomeType,
      nullable: true,
      description: 'Its part in any evaluation of the dataset; null when that evaluation did not see it. One query per page and evaluation.',
      args: { id: t.arg.id({ required: true }) },
      byPath: true,
      load: (keys: string[], ctx) => loadAnnotationOutcomes(keys, ctx),
      resolve: (o, args) => `${String(args.id)}|${o.datasetId}|${o.ord}`,
    }),
  }),
});

export const ObjectConnection = builder.connectionObject({ type: ObjectType, name: 'ObjectConnection' }, { name: 'ObjectEdge' });

builder.objectField(DatasetType, 'objects', (t) =>
  t.connection(
    {
      type: ObjectType,
      description: 'The annotations of the samples `filter` selects that `objects` selects, as rows (FiftyOne\'s patches), in `sort` order (file order by default). `first`/`last` at most 200.',
      args: {
        filter: t.arg({ type: SampleFilterType }),
        viewId: VIEW_ID_ARG(t),
        objects: t.arg({ type: ObjectFilterType }),
        sort: t.arg({ type: ObjectSortInput }),
      },
      resolve: async (dataset, args, ctx) =>
        ctx.dv.objects.page(
          dataset.id,
          await ctx.dv.views.filterOf(dataset.id, args.viewId?.toString(), toSampleFilter(args.filter as SampleFilterInput | null | undefined, (field) => `filter.${field}`)),
          toObjectFilter(args.objects, (field) => `objects.${field}`),
          toObjectSort(args.sort, (field) => `sort.${field}`),
          args,
        ),
    },
    ObjectConnection,
  ),
);
