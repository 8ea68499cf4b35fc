import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { NAME_MAX } from '../services/curation/names.js';
import type { View } from '../services/curation/views.js';
import { errorResponses } from './errors.js';
import { bodySpelling, FilterBody, strictBody, filterBodyInput, filterBodyJson } from './filter-body.js';
import { DatasetIdParams, jsonResponse, newRouter } from './router.js';

/** Saved views (docs/curation.md): a named filter and sort per dataset; `GET /samples?view=<id>` applies one. */

const Sort = z
  .looseObject({
    field: z.string({ error: 'must be a string' }).openapi({ example: 'FILE_NAME' }),
    direction: z.string({ error: 'must be ASC or DESC' }).optional().openapi({ example: 'ASC' }),
  })
  .nullable()
  .openapi('ViewSort', { description: '`{field, direction: ASC|DESC}`; stored for the sample sort of issue 18, not applied to lists yet' });

const ViewBody = strictBody({
    name: z.string({ error: 'must be a string' }).openapi({ description: `Unique in the dataset (409 otherwise); trimmed, 1-${NAME_MAX} printable characters`, example: 'to review' }),
    filter: FilterBody.optional(),
    sort: Sort.optional(),
  })
  .openapi('ViewRequest');

const ViewPatch = strictBody({ name: z.string({ error: 'must be a string' }).optional(), filter: FilterBody.optional(), sort: Sort.optional() })
  .openapi('ViewPatch', { description: 'The fields given replace the view\'s; `"sort": null` removes its sort' });

const ViewSchema = z
  .object({
    id: z.string(),
    dataset_id: z.string(),
    name: z.string(),
    filter: z.record(z.string(), z.unknown()).openapi({ description: 'As `filter` in requests' }),
    sort: z.record(z.string(), z.unknown()).nullable(),
    samples_path: z.string().openapi({ description: 'GET /samples of this view', example: '/samples?dataset_id=k3v7q2mzx4a5b6c7&view=q2mzx4a5b6c7k3v7' }),
    created_at: z.string().openapi({ format: 'date-time' }),
    updated_at: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('View');

const ViewParams = DatasetIdParams.extend({ view_id: z.string().min(1).openapi({ param: { name: 'view_id', in: 'path' } }) });
const body = <B extends z.ZodType>(schema: B) => ({ required: true, content: { 'application/json': { schema } } });

const listViews = createRoute({
  method: 'get',
  path: '/datasets/{id}/views',
  summary: 'The saved views of a dataset, oldest first',
  request: { params: DatasetIdParams },
  responses: { 200: jsonResponse(z.object({ views: z.array(ViewSchema) }), 'The views'), ...errorResponses(404) },
});

const createView = createRoute({
  method: 'post',
  path: '/datasets/{id}/views',
  summary: 'Saves a named filter and sort',
  request: { params: DatasetIdParams, body: body(ViewBody) },
  responses: { 201: jsonResponse(ViewSchema, 'The view'), ...errorResponses(400, 404, 409, 413, 415) },
});

const getView = createRoute({
  method: 'get',
  path: '/datasets/{id}/views/{view_id}',
  summary: 'One saved view',
  request: { params: ViewParams },
  responses: { 200: jsonResponse(ViewSchema, 'The view'), ...errorResponses(404) },
});

const updateView = createRoute({
  method: 'patch',
  path: '/datasets/{id}/views/{view_id}',
  summary: 'Renames a view or replaces its filter or sort',
  request: { params: ViewParams, body: body(ViewPatch) },
  responses: { 200: jsonResponse(ViewSchema, 'The view as it is now'), ...errorResponses(400, 404, 409, 413, 415) },
});

const deleteView = createRoute({
  method: 'delete',
  path: '/datasets/{id}/views/{view_id}',
  summary: 'Deletes a saved view',
  request: { params: ViewParams },
  responses: { 204: { description: 'Deleted' }, ...errorResponses(404) },
});

function viewJson(v: View) {
  return {
    id: v.id,
    dataset_id: v.datasetId,
    name: v.name,
    filter: filterBodyJson(v.filter),
    sort: v.sort,
    samples_path: `/samples?dataset_id=${v.datasetId}&view=${v.id}`,
    created_at: v.createdAt.toISOString(),
    updated_at: v.updatedAt.toISOString(),
  };
}

const FIELDS = bodySpelling();
const input = (b: { name?: string; filter?: Record<string, unknown>; sort?: unknown }) => ({
  name: b.name,
  filter: b.filter && filterBodyInput(b.filter),
  sort: b.sort,
});

export function viewRoutes(dv: DataVisor) {
  return newRouter()
    .openapi(listViews, async (c) => c.json({ views: (await dv.views.list(c.req.valid('param').id)).map(viewJson) }, 200))
    .openapi(createView, async (c) => c.json(viewJson(await dv.views.create(c.req.valid('param').id, input(c.req.valid('json')), FIELDS)), 201))
    .openapi(getView, async (c) => {
      const { id, view_id } = c.req.valid('param');
      return c.json(viewJson(await dv.views.get(id, view_id)), 200);
    })
    .openapi(updateView, async (c) => {
      const { id, view_id } = c.req.valid('param');
      return c.json(viewJson(await dv.views.update(view_id, input(c.req.valid('json')), FIELDS, id)), 200);
    })
    .openapi(deleteView, async (c) => {
      const { id, view_id } = c.req.valid('param');
      await dv.views.delete(view_id, id);
      return c.body(null, 204);
    });
}
