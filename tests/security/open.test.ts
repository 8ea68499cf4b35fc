import { afterAll, beforeAll, expect, test } from 'vitest';
import { startHarness, type Harness } from '../graphql/harness.js';
import { SAMPLE_ID } from './helpers.js';

/** Without DATAVISOR_API_TOKEN (the default) nothing changes: every route is open, URLs are unsigned. */

let h: Harness;
let id: string;

beforeAll(async () => {
  h = await startHarness();
  id = await h.ingest();
});

afterAll(async () => {
  await h?.close();
});

test('every route answers without a token', async () => {
  for (const [method, path, status] of [
    ['GET', '/health', 200],
    ['GET', '/datasets', 200],
    ['GET', `/datasets/${id}`, 200],
    ['GET', `/datasets/${id}/categories`, 200],
    ['GET', `/samples?dataset_id=${id}`, 200],
    ['GET', `/samples/${SAMPLE_ID}/annotations?dataset_id=${id}`, 200],
    ['GET', `/images/${id}/${SAMPLE_ID}?size=small`, 200],
    ['GET', `/images/${id}/${SAMPLE_ID}?size=original`, 200],
    ['GET', '/openapi.json', 200],
    ['PUT', '/graphql/stream', 201],
  ] as const) {
    const res = await fetch(`${h.base}${path}`, { method });
    expect(res.status, `${method} ${path}`).toBe(status);
    expect(res.headers.get('www-authenticate')).toBeNull();
    await res.arrayBuffer();
  }
  const gql = await h.gql('{ datasets(first: 1) { totalCount } }');
  expect(gql.data).toEqual({ datasets: { totalCount: 1 } });
});

test('image URLs are unsigned, as before, and stay publicly cacheable', async () => {
  const body = (await (await fetch(`${h.base}/samples?dataset_id=${id}&limit=2`)).json()) as { items: { id: number; thumbnail_url: string; image_url: string; thumbnail_path: string }[] };
  const s = body.items[0]!;
  expect(s.thumbnail_url).toBe(`${h.base}/images/${id}/${s.id}?size=medium`);
  expect(s.image_url).toBe(`${h.base}/images/${id}/${s.id}?size=original`);
  expect(s.thumbnail_path).toBe(`/images/${id}/${s.id}?size=medium`);
  const gql = await h.gql(`{ samples(datasetId: "${id}", first: 1) { edges { node { thumbnailUrl(size: SMALL) imageUrl } } } }`);
  expect(gql.data.samples.edges[0].node).toEqual({ thumbnailUrl: `${h.base}/images/${id}/${s.id}?size=small`, imageUrl: s.image_url });
  const thumb = await fetch(s.thumbnail_url);
  expect(thumb.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  await thumb.arrayBuffer();
});

test('no CORS headers unless DATAVISOR_CORS_ORIGINS is set', async () => {
  const res = await fetch(`${h.base}/datasets`, { headers: { origin: 'http://app.example.test' } });
  expect(res.headers.get('access-control-allow-origin')).toBeNull();
  await res.arrayBuffer();
});

test('/openapi.json declares no security', async () => {
  const doc = (await (await fetch(`${h.base}/openapi.json`)).json()) as { security?: unknown; components: { securitySchemes?: unknown } };
  expect(doc.security).toBeUndefined();
  expect(doc.components.securitySchemes).toBeUndefined();
});
