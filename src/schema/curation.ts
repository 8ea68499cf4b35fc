import type { TagCount } from '../services/curation/tags.js';
import type { View } from '../services/curation/views.js';
import type { Spelling } from '../services/curation/views.js';
import { toSampleFilter, type SampleFilterInput } from '../services/datasets/filter.js';
import type { Annotation, Sample } from '../services/datasets/samples.js';
import { BadInputError } from '../services/errors.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { DatasetType } from './dataset.js';
import { parseDatasetRef } from './global-ids.js';
import { AnnotationType, byDataset, SampleFilterArg, SampleType, VIEW_ID_ARG } from './sample.js';

/** Tags and saved views (docs/curation.md): their types, the fields they add to others, their mutations. */

const TagCountType = builder.objectRef<TagCount>('TagCount').implement({
  description: 'A tag of a dataset and how many samples and annotations carry it.',
  fields: (t) => ({
    name: t.exposeString('tag'),
    sampleCount: t.exposeInt('samples'),
    annotationCount: t.exposeInt('annotations'),
  }),
});

const ViewType = builder.objectRef<View>('View').implement({
  description: 'A saved view: a named filter and sort of one dataset. Sample lists take its id (`viewId`).',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Unique across datasets; the `viewId` of sample lists (REST: `view`).' }),
    datasetId: t.exposeID('datasetId'),
    name: t.exposeString('name', { description: 'Unique in the dataset.' }),
    filter: t.expose('filter', { type: 'JSON', description: 'The SampleFilter it saved, as given (absent fields left out).' }),
    sort: t.expose('sort', { type: 'JSON', nullable: true, description: '`{field, direction}` as saved; stored for the sort of issue 18 (not applied to lists yet).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

/** DataLoader key of a sample's or annotation's tags: (dataset, ord). */
const ordKey = (o: { datasetId: string; ord: number }) => `${o.datasetId}:${o.ord}`;

/** Tags of many samples or annotations: one query per dataset among the keys, in key order. */
async function loadTags<T extends { datasetId: string; ord: number }>(items: T[], of: (datasetId: string, ords: number[]) => Promise<string[][]>): Promise<string[][]> {
  const found = new Map<string, string[]>();
  await Promise.all(
    [...byDataset(items, (i) => i.datasetId)].map(async ([datasetId, group]) => {
      const tags = await of(datasetId, group.map((i) => i.ord));
      group.forEach((item, i) => found.set(ordKey(item), tags[i]!));
    }),
  );
  return items.map((i) => found.get(ordKey(i)) ?? []);
}

builder.objectField(SampleType, 'tags', (t) =>
  t.loadableList({
    type: 'String',
    description: 'Its tags, in order. One query for the samples of a page.',
    load: (samples: Sample[], ctx: GraphQLContext) => loadTags(samples, (id, ords) => ctx.dv.tags.ofSamples(id, ords)),
    loaderOptions: { cacheKeyFn: ordKey },
    resolve: (s) => s,
  }),
);

builder.objectField(AnnotationType, 'tags', (t) =>
  t.loadableList({
    type: 'String',
    description: 'Its tags, in order. One query for the annotations of a page.',
    load: (annotations: Annotation[], ctx: GraphQLContext) => loadTags(annotations, (id, ords) => ctx.dv.tags.ofAnnotations(id, ords)),
    loaderOptions: { cacheKeyFn: ordKey },
    resolve: (a) => a,
  }),
);

builder.objectFields(DatasetType, (t) => ({
  tags: t.field({
    type: [TagCountType],
    description: 'Every tag of the dataset with its sample and annotation counts, in name order; with `filter` or `viewId`, counted over the samples they select (and their annotations).',
    args: { filter: t.arg({ type: SampleFilterArg }), viewId: VIEW_ID_ARG(t) },
    resolve: (d, args, ctx) => ctx.dv.tags.counts(d.id, args.filter ? toSampleFilter(args.filter, (f) => `filter.${f}`) : null, args.viewId?.toString()),
  }),
  views: t.loadableList({
    type: ViewType,
    description: 'Its saved views, oldest first.',
    load: (ids: string[], ctx: GraphQLContext) => ctx.dv.views.listMany(ids),
    resolve: (d) => d.id,
  }),
  view: t.field({
    type: ViewType,
    nullable: true,
    description: 'One saved view; `null` and a NOT_FOUND error for an unknown view or one of another dataset.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (d, args, ctx) => ctx.dv.views.get(d.id, String(args.id)),
  }),
}));

// ---------------------------------------------------------------------------------------------
// Mutations

/** Errors name input fields as the caller wrote them. */
const inInput = (renames: Record<string, string> = {}): Spelling => (f) => `input.${renames[f] ?? f}`;

const TagSamplesInput = builder.inputType('TagSamplesInput', {
  description: 'Tags and the samples to add them to (or remove them from): `sampleIds`, or `filter` (`{}` for every sample) and/or `viewId`.',
  fields: (t) => ({
    datasetId: t.id({ required: true }),
    tags: t.stringList({ required: true, description: 'Trimmed; 1-100 printable characters each; at most 100.' }),
    filter: t.field({ type: SampleFilterArg }),
    viewId: t.id({ description: 'A saved view of the dataset; with `filter`, both must hold.' }),
    sampleIds: t.field({ type: ['SafeInt'], description: 'Image ids (`Sample.sampleId`), at most 100,000; NOT_FOUND, with nothing changed, if one is not the dataset\'s.' }),
  }),
});

const TagAnnotationsInput = builder.inputType('TagAnnotationsInput', {
  description: 'Tags and the annotations to add them to (or remove them from): `annotationIds`, or those of the samples `filter` and/or `viewId` select, narrowed by `categories` and `predictions`.',
  fields: (t) => ({
    datasetId: t.id({ required: true }),
    tags: t.stringList({ required: true }),
    annotationIds: t.idList({ description: '`Annotation.id`s (`<datasetId>:<position>`) of this dataset, at most 100,000.' }),
    filter: t.field({ type: SampleFilterArg }),
    viewId: t.id(),
    categories: t.stringList({ description: 'Only annotations in these categories.' }),
    predictions: t.stringList({ description: 'The annotations of these prediction runs instead of the ground truth.' }),
  }),
});

const SaveViewInput = builder.inputType('SaveViewInput', {
  fields: (t) => ({
    datasetId: t.id({ required: true }),
    name: t.string({ required: true, description: 'Unique in the dataset (CONFLICT otherwise); trimmed, 1-100 printable characters.' }),
    filter: t.field({ type: SampleFilterArg, description: 'Checked as sample lists check it; absent: every sample.' }),
    sort: t.field({ type: 'JSON', description: '`{field, direction: ASC|DESC}`; stored for the sort of issue 18.' }),
  }),
});

const UpdateViewInput = builder.inputType('UpdateViewInput', {
  description: 'The fields given replace the view\'s; `sort: null` removes its sort.',
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    filter: t.field({ type: SampleFilterArg }),
    sort: t.field({ type: 'JSON' }),
  }),
});

type TagSamplesArgs = { datasetId: string | number; tags: string[]; filter?: SampleFilterInput | null; viewId?: string | number | null; sampleIds?: number[] | null };
type TagAnnotationsArgs = Omit<TagSamplesArgs, 'sampleIds'> & { annotationIds?: (string | number)[] | null; categories?: string[] | null; predictions?: string[] | null };

function sampleTarget(input: TagSamplesArgs) {
  return {
    datasetId: parseDatasetRef(String(input.datasetId)),
    target: { sampleIds: input.sampleIds, filter: input.filter && toSampleFilter(input.filter, (f) => `input.filter.${f}`), viewId: input.viewId?.toString() },
  };
}

function annotationTarget(input: TagAnnotationsArgs) {
  const datasetId = parseDatasetRef(String(input.datasetId));
  const annotationOrds = input.annotationIds?.map((raw) => {
    const id = String(raw);
    const m = /^([a-z2-7]{16}):(\d{1,10})$/.exec(id);
    if (!m || m[1] !== datasetId) throw new BadInputError(`input.annotationIds: ${JSON.stringify(id)} is not an annotation id of dataset ${datasetId} (Annotation.id: <datasetId>:<position>)`);
    return Number(m[2]);
  });
  return {
    datasetId,
    target: {
      annotationOrds,
      filter: input.filter && toSampleFilter(input.filter, (f) => `input.filter.${f}`),
      viewId: input.viewId?.toString(),
      categories: input.categories,
      predictions: input.predictions,
    },
  };
}

const ANNOTATION_FIELDS = inInput({ annotationOrds: 'annotationIds' });

builder.mutationFields((t) => ({
  tagSamples: t.int({
    description: 'Adds the tags to the samples; returns how many samples gained a tag. One transaction; the dataset\'s revision moves on only when something changed.',
    args: { input: t.arg({ type: TagSamplesInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const { datasetId, target } = sampleTarget(input);
      return (await ctx.dv.tags.tagSamples(datasetId, target, input.tags, inInput())).changed;
    },
  }),
  untagSamples: t.int({
    description: 'Removes the tags from the samples; returns how many samples lost a tag.',
    args: { input: t.arg({ type: TagSamplesInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const { datasetId, target } = sampleTarget(input);
      return (await ctx.dv.tags.untagSamples(datasetId, target, input.tags, inInput())).changed;
    },
  }),
  tagAnnotations: t.int({
    description: 'Adds the tags to the annotations; returns how many annotations gained a tag.',
    args: { input: t.arg({ type: TagAnnotationsInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const { datasetId, target } = annotationTarget(input);
      return (await ctx.dv.tags.tagAnnotations(datasetId, target, input.tags, ANNOTATION_FIELDS)).changed;
    },
  }),
  untagAnnotations: t.int({
    description: 'Removes the tags from the annotations; returns how many annotations lost a tag.',
    args: { input: t.arg({ type: TagAnnotationsInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const { datasetId, target } = annotationTarget(input);
      return (await ctx.dv.tags.untagAnnotations(datasetId, target, input.tags, ANNOTATION_FIELDS)).changed;
    },
  }),
  saveView: t.field({
    type: ViewType,
    description: 'Saves a named filter and sort of a dataset. CONFLICT when the dataset has a view of that name.',
    args: { input: t.arg({ type: SaveViewInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.dv.views.create(parseDatasetRef(String(input.datasetId)), input, inInput()),
  }),
  updateView: t.field({
    type: ViewType,
    description: 'Renames a view or replaces its filter or sort. NOT_FOUND for an unknown view, CONFLICT for a name in use.',
    args: { input: t.arg({ type: UpdateViewInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.dv.views.update(String(input.id), input, inInput()),
  }),
  renameView: t.field({
    type: ViewType,
    description: 'Renames a view. NOT_FOUND for an unknown view, CONFLICT for a name in use.',
    args: { id: t.arg.id({ required: true }), name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.dv.views.update(String(args.id), { name: args.name }, (f) => f),
  }),
  deleteView: t.id({
    description: 'Deletes a view; returns its id. NOT_FOUND for an unknown view.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => (await ctx.dv.views.delete(String(args.id))).id,
  }),
}));
