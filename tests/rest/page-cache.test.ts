import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_IMAGES, DEMO_JSON, getJson, ingest, SLOW, startTestServer, type TestServer } from './helpers.js';

/**
 * GET /samples answers repeated requests from a cache of their bytes (src/rest/response-cache.ts),
 * with an ETag for revalidation. Each cached answer must be exactly what a fresh one would be:
 * per query, per origin of its URLs, and never for a dataset that is gone.
 */

let t: TestServer;
let uncached: TestServer;
let id: string;
let uncachedId: string;

async function ingestDemo(s: TestServer): Promise<string> {
  const r = await ingest(s.base, { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES });
  return r.events.at(-1)!.dataset_id!;
}

beforeAll(async () => {
  [t, uncached] = await Promise.all([startTestServer(), startTestServer({ env: { DATAVISOR_PAGE_CACHE_MB: '0' } })]);
  [id, uncachedId] = await Promise.all([ingestDemo(t), ingestDemo(uncached)]);
}, SLOW);

afterAll(async () => {
  await Promise.all([t?.close(), uncached?.close()]);
});

describe('GET /samples answer cache', { timeout: SLOW }, () => {
  test('a repeated page is answered without a query, byte for byte as the first time', async () => {
    const url = `${t.base}/samples?dataset_id=${id}&offset=10&limit=20`;
    const first = await fetch(url);
    const firstBody = await first.text();
    const queries = t.dv.db.queryCount;
    const again = await fetch(url);
    expect(await again.text()).toBe(firstBody);
    expect(t.dv.db.queryCount).toBe(queries);
    expect(again.headers.get('content-type')).toMatch(/^application\/json/);
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(JSON.parse(firstBody)).toMatchObject({ total: 128, offset: 10, limit: 20 });
  });

  test('with the cache off, every request queries, and the answers are the same as with it', async () => {
    for (const q of ['offset=10&limit=20', 'category=triangle&limit=7', 'is_crowd=true&limit=50']) {
      const cachedBody = await (await fetch(`${t.base}/samples?dataset_id=${id}&${q}`)).json();
      const before = uncached.dv.db.queryCount;
      const a = await getJson(`${uncached.base}/samples?dataset_id=${uncachedId}&${q}`);
      const b = await getJson(`${uncached.base}/samples?dataset_id=${uncachedId}&${q}`);
      expect(uncached.dv.db.queryCount).toBeGreaterThanOrEqual(before + 2);
      expect(b.body).toEqual(a.body);
      // Same file, other dataset id: equal once the ids in the URLs are swapped.
      expect(JSON.parse(JSON.stringify(a.body).replaceAll(uncachedId, id).replaceAll(uncached.base, t.base))).toEqual(cachedBody);
    }
  });

  test('each query has its own answer: filters, offset and limit are part of the key', async () => {
    const page = (q: string) => getJson(`${t.base}/samples?dataset_id=${id}&${q}`);
    const [all, triangle, five, six, later] = await Promise.all([
      page('limit=5'), page('category=triangle&limit=5'), page('limit=5'), page('limit=6'), page('offset=5&limit=5'),
    ]);
    expect(five.body).toEqual(all.body);
    expect(triangle.body.total).toBeLessThan(all.body.total);
    expect(triangle.body.total).toBeGreaterThan(0);
    expect(six.body.items).toHaveLength(6);
    expect(six.body.items.slice(0, 5)).toEqual(all.body.items);
    expect(later.body.items[0]).toEqual(six.body.items[5]);
  });

  test('the URLs in a cached page carry the origin of the request it answers', async () => {
    const port = new URL(t.base).port;
    const q = `/samples?dataset_id=${id}&limit=3`;
    await getJson(`http://127.0.0.1:${port}${q}`);
    const viaLocalhost = await getJson(`http://localhost:${port}${q}`);
    expect(viaLocalhost.body.items.every((s: any) => s.thumbnail_url.startsWith(`http://localhost:${port}/images/`))).toBe(true);
    const viaIp = await getJson(`http://127.0.0.1:${port}${q}`);
    expect(viaIp.body.items.every((s: any) => s.image_url.startsWith(`http://127.0.0.1:${port}/images/`))).toBe(true);
  });

  test('If-None-Match with the ETag answers 304 without a body, as a list or weak tag too', async () => {
    const url = `${t.base}/samples?dataset_id=${id}&limit=4`;
    // The answer as it is: fetch asks for gzip by default, and a compressed answer's tag is weak
    // (tests/rest/compression.test.ts).
    const identity = { 'accept-encoding': 'identity' };
    const first = await fetch(url, { headers: identity });
    await first.arrayBuffer();
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(first.headers.get('cache-control')).toBe('private, no-cache');
    for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const r = await fetch(url, { headers: { ...identity, 'If-None-Match': header } });
      expect(r.status, header).toBe(304);
      expect(await r.text()).toBe('');
      expect(r.headers.get('etag')).toBe(etag);
    }
    const stale = await fetch(url, { headers: { 'If-None-Match': '"not-this-page"' } });
    expect(stale.status).toBe(200);
    expect((await stale.json()).items).toHaveLength(4);
    // Another page has another tag.
    const other = await fetch(`${t.base}/samples?dataset_id=${id}&limit=4&offset=4`);
    await other.arrayBuffer();
    expect(other.headers.get('etag')).not.toBe(etag);
  });

  test('a deleted dataset answers 404 although its pages were cached', async () => {
    const s = await startTestServer();
    try {
      const gone = await ingestDemo(s);
      const url = `${s.base}/samples?dataset_id=${gone}&limit=10`;
      expect((await getJson(url)).status).toBe(200);
      expect((await fetch(`${s.base}/datasets/${gone}`, { method: 'DELETE' })).status).toBe(204);
      const after = await getJson(url);
      expect(after.status).toBe(404);
      expect(after.body.error.code).toBe('NOT_FOUND');
    } finally {
      await s.close();
    }
  });
});
