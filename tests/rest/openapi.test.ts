import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getJson, SLOW, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
let doc: any;

beforeAll(async () => {
  t = await startTestServer();
  doc = (await getJson(`${t.base}/openapi.json`)).body;
}, SLOW);

afterAll(async () => {
  await t?.close();
});

describe('/openapi.json is generated from the schemas that validate requests', () => {
  test('it is an OpenAPI 3.1 document listing every REST route', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(routes.sort()).toEqual(
      [
        'GET /health',
        'POST /datasets/ingest',
        'GET /datasets',
        'GET /datasets/{id}',
        'DELETE /datasets/{id}',
        'GET /datasets/{id}/categories',
        'GET /datasets/{id}/aggregate',
        'GET /datasets/{id}/aggregate/histogram',
        'GET /datasets/{id}/export',
        'POST /datasets/{id}/predictions',
        'GET /datasets/{id}/predictions',
        'DELETE /datasets/{id}/predictions/{name}',
        'POST /datasets/{id}/evaluations',
        'GET /datasets/{id}/evaluations',
        'GET /datasets/{id}/evaluations/{evaluation_id}',
        'DELETE /datasets/{id}/evaluations/{evaluation_id}',
        'GET /datasets/{id}/evaluations/{evaluation_id}/curves',
        'GET /datasets/{id}/tags',
        'POST /datasets/{id}/tags',
        'POST /datasets/{id}/tags/remove',
        'POST /datasets/{id}/annotation-tags',
        'POST /datasets/{id}/annotation-tags/remove',
        'GET /datasets/{id}/views',
        'POST /datasets/{id}/views',
        'GET /datasets/{id}/views/{view_id}',
        'PATCH /datasets/{id}/views/{view_id}',
        'DELETE /datasets/{id}/views/{view_id}',
        'GET /samples',
        'GET /samples/{sample_id}/annotations',
        'GET /images/{dataset_id}/{sample_id}',
        'GET /datasets/{id}/objects',
        'GET /images/{dataset_id}/{sample_id}/objects/{ord}',
        'GET /images/{dataset_id}/{sample_id}/crop',
      ].sort(),
    );
  });

  test('parameters carry the limits the validators enforce', () => {
    const params = doc.paths['/samples'].get.parameters as any[];
    const byName = Object.fromEntries(params.map((p) => [p.name, p]));
    expect(byName.dataset_id).toMatchObject({ in: 'query', required: true });
    expect(byName.limit.schema).toMatchObject({ type: 'integer', minimum: 0, maximum: 200, default: 50 });
    expect(byName.offset.schema).toMatchObject({ type: 'integer', minimum: 0, default: 0 });
    const size = (doc.paths['/images/{dataset_id}/{sample_id}'].get.parameters as any[]).find((p) => p.name === 'size');
    expect(size.schema.enum).toEqual(['small', 'medium', 'large', 'original']);
    const ingest = doc.paths['/datasets/ingest'].post;
    expect(ingest.requestBody.required).toBe(true);
    expect(Object.keys(ingest.responses['200'].content)).toEqual(['text/event-stream']);
  });

  test('shapes and the error body are named components', () => {
    for (const name of ['Dataset', 'Sample', 'Annotation', 'Category', 'IngestRequest', 'IngestEvent', 'Error']) {
      expect(doc.components.schemas).toHaveProperty(name);
    }
    // image_dir: required for COCO only (a VOC folder holds JPEGImages/), checked by the body's refinement.
    expect(doc.components.schemas.IngestRequest.required.sort()).toEqual(['annotation_path']);
    expect(doc.paths['/datasets/{id}'].get.responses['404'].content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
  });
});

describe('the rest of the surface', () => {
  test('GET /health answers {"status":"ok"}', async () => {
    const r = await getJson(`${t.base}/health`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  test('GraphQL is mounted at /graphql and /graphql/stream (its own answers, not the REST 404)', async () => {
    for (const [method, p] of [['GET', '/graphql'], ['POST', '/graphql'], ['OPTIONS', '/graphql'], ['POST', '/graphql/stream']] as const) {
      const res = await fetch(`${t.base}${p}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify({ query: '{ __typename }' }) : undefined,
      });
      const text = await res.text();
      expect(text).not.toContain('No route');
    }
  });
});
