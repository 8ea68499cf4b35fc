import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { NAME_MAX, TAGS_MAX } from '../services/curation/names.js';
import { IDS_MAX, type TagChange } from '../services/curation/tags.js';
import { SAMPLE_FILTER_FIELDS, toSampleFilter } from '../services/datasets/filter.js';
import { errorResponses } from './errors.js';
import { bodySpelling, FilterBody, strictBody, filterBodyInput } from './filter-body.js';
import { DatasetIdParams, jsonResponse, newRouter } from './router.js';
import { EVALUATION_HAS, FILTER_PARAMS, filterInput, VIEW_PARAM } from './samples.js';

/**
 * Tags (docs/curation.md): counts per tag, and adding or removing tags on the samples or
 * annotations a body names. Removal is a POST to `…/remove` rather than a DELETE with a body,
 * which proxies and clients may drop.
 */

const Tags = z.array(z.string({ error: 'must be a string' }), { error: 'must be a list of tags' }).openapi({ description: `Tags (trimmed; 1-${NAME_MAX} printable characters each; at most ${TAGS_MAX})`, example: ['review'] });
const ViewId = z.string({ error: 'must be a view id' }).openapi({ description: 'A saved view of the dataset; with `filter`, both must hold' });
const Ids = z.array(z.number({ error: 'must be a number' }).int('must be an integer'), { error: 'must be a list of integers' });

const SampleTagsBody = strictBody({
    tags: Tags,
    sample_ids: Ids.optional().openapi({ description: `Image ids (a sample's \`id\`), at most ${IDS_MAX}; 404 with nothing changed if one is not the dataset's` }),
    filter: FilterBody.optional(),
    view: ViewId.optional(),
  })
  .openapi('SampleTagsRequest', { description: 'The samples: `sample_ids`, or `filter` (`{}` for every sample) and/or `view`.' });

const AnnotationTagsBody = strictBody({
    tags: Tags,
    positions: Ids.optional().openapi({ description: `Annotations by \`position\` (unique in the dataset), at most ${IDS_MAX}` }),
    filter: FilterBody.optional(),
    view: ViewId.optional(),
    categories: z.array(z.string()).optional().openapi({ description: 'Only annotations in these categories' }),
    predictions: z.array(z.string()).optional().openapi({ description: 'The annotations of these prediction runs instead of the ground truth' }),
  })
  .openapi('AnnotationTagsRequest', { description: 'The annotations: `positions`, or those of the samples `filter` and/or `view` select, narrowed by `categories` and `predictions`.' });

const TagChangeSchema = z
  .object({
    changed: z.number().int().openapi({ description: 'Samples (annotations) that gained a tag, or lost one' }),
    revision: z.number().int().openapi({ description: 'The dataset\'s revision after the call; it moves on only when something changed' }),
  })
  .openapi('TagChange');

const TagCountSchema = z.object({ name: z.string(), sample_count: z.number().int(), annotation_count: z.number().int() }).openapi('TagCount');

const change = <B extends z.ZodType>(method: 'post', path: string, summary: string, body: B) =>
  createRoute({
    method,
    path,
    summary,
    request: { params: DatasetIdParams, body: { required: true, content: { 'application/json': { schema: body } } } },
    responses: { 200: jsonResponse(TagChangeSchema, 'How many changed, and the revision'), ...errorResponses(400, 404, 413, 415) },
  });

const listTags = createRoute({
  method: 'get',
  path: '/datasets/{id}/tags',
  summary: 'Every tag of the dataset with its sample and annotation counts, in name order; with filter parameters or `view`, over the samples they select',
  request: { params: DatasetIdParams, query: z.strictObject({ ...FILTER_PARAMS, ...EVALUATION_HAS, ...VIEW_PARAM }) },
  responses: { 200: jsonResponse(z.object({ tags: z.array(TagCountSchema) }), 'The tags'), ...errorResponses(400, 404) },
});

const tagSamples = change('post', '/datasets/{id}/tags', 'Adds tags to samples', SampleTagsBody);
const untagSamples = change('post', '/datasets/{id}/tags/remove', 'Removes tags from samples', SampleTagsBody);
const tagAnnotations = change('post', '/datasets/{id}/annotation-tags', 'Adds tags to annotations', AnnotationTagsBody);
const untagAnnotations = change('post', '/datasets/{id}/annotation-tags/remove', 'Removes tags from annotations', AnnotationTagsBody);

const SAMPLE_FIELDS = bodySpelling({ viewId: 'view' });
const ANNOTATION_FIELDS = bodySpelling({ viewId: 'view', annotationOrds: 'positions' });
const filterOf = (body: { filter?: Record<string, unknown> }) =>
  body.filter && toSampleFilter(filterBodyInput(body.filter), (f) => `filter.${SAMPLE_FILTER_FIELDS[f].param}`);
const answer = (r: TagChange) => ({ changed: r.changed, revision: r.revision });

export function tagRoutes(dv: DataVisor) {
  const samples = (body: z.infer<typeof SampleTagsBody>) => ({ sampleIds: body.sample_ids, filter: filterOf(body), viewId: body.view });
  const annotations = (body: z.infer<typeof AnnotationTagsBody>) => ({
    annotationOrds: body.positions, filter: filterOf(body), viewId: body.view, categories: body.categories, predictions: body.predictions,
  });
  return newRouter()
    .openapi(listTags, async (c) => {
      const q = c.req.valid('query');
      const filter = toSampleFilter(filterInput(q), (field) => `query parameter "${SAMPLE_FILTER_FIELDS[field].param}"`);
      const counts = await dv.tags.counts(c.req.valid('param').id, filter, q.view);
      return c.json({ tags: counts.map((t) => ({ name: t.tag, sample_count: t.samples, annotation_count: t.annotations })) }, 200);
    })
    .openapi(tagSamples, async (c) => {
      const body = c.req.valid('json');
      return c.json(answer(await dv.tags.tagSamples(c.req.valid('param').id, samples(body), body.tags, SAMPLE_FIELDS)), 200);
    })
    .openapi(untagSamples, async (c) => {
      const body = c.req.valid('json');
      return c.json(answer(await dv.tags.untagSamples(c.req.valid('param').id, samples(body), body.tags, SAMPLE_FIELDS)), 200);
    })
    .openapi(tagAnnotations, async (c) => {
      const body = c.req.valid('json');
      return c.json(answer(await dv.tags.tagAnnotations(c.req.valid('param').id, annotations(body), body.tags, ANNOTATION_FIELDS)), 200);
    })
    .openapi(untagAnnotations, async (c) => {
      const body = c.req.valid('json');
      return c.json(answer(await dv.tags.untagAnnotations(c.req.valid('param').id, annotations(body), body.tags, ANNOTATION_FIELDS)), 200);
    });
}
