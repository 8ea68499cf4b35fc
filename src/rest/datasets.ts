import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { categoryJson, datasetJson } from '../services/datasets/json-views.js';
import { errorResponses } from './errors.js';
import { DatasetIdParams, jsonResponse, newRouter } from './router.js';

export const WarningSchema = z
  .object({
    code: z.string(),
    count: z.number().int(),
    message: z.string(),
    examples: z.array(z.union([z.string(), z.number()])),
  })
  .openapi('IngestWarning');

const JsonObject = z.record(z.string(), z.unknown());

export const DatasetSchema = z
  .object({
    id: z.string().openapi({ example: 'k3v7q2mzx4a5b6c7' }),
    name: z.string(),
    format: z.string().openapi({ example: 'coco' }),
    source_path: z.string(),
    image_dir: z.string(),
    split: z.string().nullable(),
    image_count: z.number().int(),
    annotation_count: z.number().int(),
    category_count: z.number().int(),
    created_at: z.string().openapi({ format: 'date-time' }),
    warnings: z.array(WarningSchema),
    info: JsonObject.nullable(),
    plugin_stats: JsonObject.nullable(),
    bytes: z.number().int(),
    ingest_seconds: z.number(),
    revision: z.number().int().openapi({ description: '0 at ingest; every later change of the dataset (predictions, tags…) adds one' }),
  })
  .openapi('Dataset');

const CategorySchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    supercategory: z.string().nullable(),
    annotation_count: z.number().int(),
    image_count: z.number().int(),
  })
  .openapi('Category');

const listDatasets = createRoute({
  method: 'get',
  path: '/datasets',
  summary: 'Every dataset, newest first',
  responses: { 200: jsonResponse(z.object({ datasets: z.array(DatasetSchema) }), 'The datasets') },
});

const getDataset = createRoute({
  method: 'get',
  path: '/datasets/{id}',
  summary: 'One dataset',
  request: { params: DatasetIdParams },
  responses: { 200: jsonResponse(DatasetSchema, 'The dataset'), ...errorResponses(404) },
});

const deleteDataset = createRoute({
  method: 'delete',
  path: '/datasets/{id}',
  summary: 'Deletes a dataset: its samples, annotations, categories and cached thumbnails',
  request: { params: DatasetIdParams },
  responses: { 204: { description: 'Deleted' }, ...errorResponses(404) },
});

const listCategories = createRoute({
  method: 'get',
  path: '/datasets/{id}/categories',
  summary: 'Categories of a dataset in category id order, with annotation and image counts',
  request: { params: DatasetIdParams },
  responses: { 200: jsonResponse(z.object({ categories: z.array(CategorySchema) }), 'The categories'), ...errorResponses(404) },
});

export function datasetRoutes(dv: DataVisor) {
  return newRouter()
    .openapi(listDatasets, async (c) => c.json({ datasets: (await dv.datasets.list()).map(datasetJson) }, 200))
    .openapi(getDataset, async (c) => c.json(datasetJson(await dv.datasets.get(c.req.valid('param').id)), 200))
    .openapi(deleteDataset, async (c) => {
      await dv.datasets.delete(c.req.valid('param').id);
      return c.body(null, 204);
    })
    .openapi(listCategories, async (c) => {
      const { id } = c.req.valid('param');
      // The lookup answers 404 for an unknown id; an existing dataset may have no category.
      const [, [categories]] = await Promise.all([dv.datasets.get(id), dv.datasets.categoriesOf([id])]);
      return c.json({ categories: (categories ?? []).map(categoryJson) }, 200);
    });
}
