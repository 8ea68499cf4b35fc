import { datasetKey, type Category, type Dataset, type Warning } from '../services/datasets/datasets.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { parseDatasetRef } from './global-ids.js';
import { decodeDatasetCursor, encodeDatasetCursor, planPage, toConnection } from '../services/datasets/paging.js';

export const WarningType = builder.objectRef<Warning>('Warning').implement({
  description: 'Something the ingest noticed and accepted (e.g. annotations of unknown images), counted per kind.',
  fields: (t) => ({
    code: t.exposeString('code'),
    count: t.exposeInt('count'),
    message: t.exposeString('message'),
    examples: t.stringList({ description: 'A few of the ids or names concerned.', resolve: (w) => w.examples.map(String) }),
  }),
});

export const CategoryType = builder.objectRef<Category>('Category').implement({
  description: 'A category of a dataset, with how often it is used.',
  fields: (t) => ({
    id: t.id({ description: 'Unique across datasets: `<datasetId>:<categoryId>`.', resolve: (c) => `${c.datasetId}:${c.categoryId}` }),
    categoryId: t.field({ type: 'SafeInt', description: 'The category id of the annotation file.', resolve: (c) => c.categoryId }),
    name: t.exposeString('name'),
    supercategory: t.exposeString('supercategory', { nullable: true }),
    annotationCount: t.exposeInt('annotationCount', { description: 'Annotations in this category.' }),
    imageCount: t.exposeInt('imageCount', { description: 'Samples with at least one annotation in this category.' }),
  }),
});

/** Loaded through a per-request DataLoader: `dataset(id)`, `node(id)` and `Sample.dataset` share one batch. */
export const DatasetType = builder.loadableNode('Dataset', {
  description: 'One ingested dataset. Changes after its ingest (predictions, tags…) bump its `revision`.',
  id: { resolve: (d) => d.id },
  load: (ids: string[], ctx: GraphQLContext) => ctx.dv.datasets.getMany(ids),
  cacheResolved: (d) => d.id,
  fields: (t) => ({
    datasetId: t.exposeID('id', { description: 'The id REST uses (`/datasets/{id}`); every argument that takes a dataset accepts it or `id`.' }),
    name: t.exposeString('name'),
    format: t.exposeString('format'),
    sourcePath: t.exposeString('sourcePath', { description: 'The annotation file, resolved.' }),
    imageDir: t.exposeString('imageDir'),
    split: t.exposeString('split', { nullable: true, description: 'The split given at ingest, applied to every sample.' }),
    imageCount: t.exposeInt('imageCount'),
    annotationCount: t.exposeInt('annotationCount'),
    categoryCount: t.exposeInt('categoryCount'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    bytes: t.field({ type: 'SafeInt', description: 'Size of the annotation file.', resolve: (d) => d.bytes }),
    ingestSeconds: t.exposeFloat('ingestSeconds'),
    revision: t.exposeInt('revision', { description: '0 at ingest; every later change of the dataset (predictions, tags…) adds one. Cursors made at one revision are refused at another.' }),
    info: t.expose('info', { type: 'JSON', nullable: true, description: 'The `info` object of the file.' }),
    pluginStats: t.expose('pluginStats', { type: 'JSON', nullable: true, description: 'What plugins reported at ingest.' }),
    warnings: t.field({ type: [WarningType], resolve: (d) => d.warnings }),
    categories: t.loadableList({
      type: CategoryType,
      description: 'In category id order, with per-category annotation and image counts.',
      load: (ids: string[], ctx) => ctx.dv.datasets.categoriesOf(ids),
      resolve: (d) => d.id,
    }),
  }),
});

export const DatasetConnection = builder.connectionObject({ type: DatasetType, name: 'DatasetConnection' }, { name: 'DatasetEdge' });

builder.queryFields((t) => ({
  datasets: t.connection(
    {
      type: DatasetType,
      description: 'Every dataset, newest first. Cursors carry the (createdAt, id) key.',
      resolve: async (_root, args, ctx) => {
        const plan = planPage(args, decodeDatasetCursor);
        const window =
          plan.direction === 'forward'
            ? { kind: 'after' as const, after: plan.cursor, limit: plan.limit }
            : { kind: 'before' as const, before: plan.cursor, limit: plan.limit };
        const { datasets, hasMore } = await ctx.dv.datasets.page(window);
        return toConnection(plan, datasets, hasMore, (d: Dataset) => encodeDatasetCursor(datasetKey(d)), () => ctx.dv.datasets.count());
      },
    },
    DatasetConnection,
  ),
  dataset: t.field({
    type: DatasetType,
    nullable: true,
    description: 'A dataset by its id or global id; `null` and a NOT_FOUND error if it does not exist.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => parseDatasetRef(String(args.id)),
  }),
}));

builder.mutationFields((t) => ({
  deleteDataset: t.id({
    description: 'Deletes a dataset with its samples, annotations, categories and cached thumbnails; returns the id it was given. NOT_FOUND if unknown.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await ctx.dv.datasets.delete(parseDatasetRef(String(args.id)));
      return args.id;
    },
  }),
}));
