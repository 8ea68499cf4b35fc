import fs from 'node:fs';
import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_JSON, startHarness, type Harness } from '../graphql/harness.js';

/**
 * Response compression (src/rest/compression.ts) through node:http, which, unlike fetch, hands
 * over the bytes as they were sent.
 */

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** As sent. */
  wire: Buffer;
  /** Decoded per Content-Encoding. */
  body: Buffer;
}

function send(base: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const wire = Buffer.concat(chunks);
        const enc = res.headers['content-encoding'];
        const decoded = enc === 'br' ? zlib.brotliDecompressSync(wire) : enc === 'gzip' ? zlib.gunzipSync(wire) : wire;
        resolve({ status: res.statusCode!, headers: res.headers, wire, body: decoded });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const BROWSER = 'gzip, deflate, br, zstd';
let h: Harness;
let id: string;
let cors: Harness;
beforeAll(async () => {
  h = await startHarness();
  id = await h.ingest();
  cors = await startHarness({ env: { DATAVISOR_CORS_ORIGINS: 'http://app.example' } });
  await cors.ingest();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await cors?.close();
});

describe('GraphiQL', () => {
  test('the page is small and links its bundle; every file is compressed, immutable, and the same bytes once decoded', async () => {
    const page = await send(h.base, '/graphql', { accept: 'text/html', 'accept-encoding': BROWSER });
    expect(page.status).toBe(200);
    expect(page.headers['content-encoding']).toBe('br');
    expect(page.headers.vary).toMatch(/Accept-Encoding/);
    const html = page.body.toString('utf8');
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    expect(html).toContain(id);
    // It inlined 9 MB of script, styles and workers before.
    expect(page.body.length).toBeLessThan(4096);
    const links = [...html.matchAll(/"(\/graphql\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(links.map((l) => l.split('/').at(-1)).sort()).toEqual(['editor.worker.js', 'favicon.ico', 'graphiql.css', 'graphiql.js', 'graphql.worker.js', 'json.worker.js']);
    let total = page.wire.length;
    for (const link of links) {
      const plain = await send(h.base, link);
      expect(plain.status, link).toBe(200);
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      for (const [accept, encoding] of [[BROWSER, 'br'], ['gzip', 'gzip']] as const) {
        const packed = await send(h.base, link, { 'accept-encoding': accept });
        expect(packed.headers['content-encoding'], link).toBe(encoding);
        expect(packed.headers['content-length']).toBe(String(packed.wire.length));
        expect(packed.headers.vary).toBe('Accept-Encoding');
        expect(packed.body.equals(plain.body), link).toBe(true);
        if (encoding === 'br') total += packed.wire.length;
      }
    }
    // A first visit, brotli: about 2.1 MB (9.1 MB before); later visits fetch the page alone.
    expect(total).toBeLessThan(2_500_000);
  }, 60_000);

  test('with a token set, the bundle loads without it, as the page does', async () => {
    const secured = await startHarness({ env: { DATAVISOR_API_TOKEN: 'compression-test-token' } });
    try {
      const html = (await send(secured.base, '/graphql', { accept: 'text/html' })).body.toString('utf8');
      const script = /src="(\/graphql\/assets\/[^"]+)"/.exec(html)![1]!;
      expect((await send(secured.base, script)).status).toBe(200);
      expect((await send(secured.base, '/datasets')).status).toBe(401);
    } finally {
      await secured.close();
    }
  });
});

describe('what the client accepts', () => {
  test.each([
    [BROWSER, 'br'],
    ['gzip', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['*', 'br'],
    ['*;q=0.5, br;q=0', 'gzip'],
    ['identity', undefined],
    ['br;q=0, gzip;q=0', undefined],
    ['deflate', undefined],
  ])('Accept-Encoding: %s → %s', async (accept, encoding) => {
    const res = await send(h.base, '/openapi.json', { 'accept-encoding': accept });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe(encoding);
    expect(res.headers.vary).toBe('Accept-Encoding');
    expect(JSON.parse(res.body.toString('utf8')).openapi).toBe('3.1.0');
  });

  test('no Accept-Encoding: the answer as it is', async () => {
    const res = await send(h.base, '/openapi.json');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers['content-length']).toBe(String(res.wire.length));
  });
});

describe('which answers', () => {
  test('a GraphQL answer above a kilobyte is compressed; a small one is not', async () => {
    const query = (q: string) => send(h.base, '/graphql', { 'content-type': 'application/json', 'accept-encoding': BROWSER }, 'POST', JSON.stringify({ query: q }));
    const big = await query(`{ samples(datasetId: "${id}", first: 50) { edges { node { fileName annotations { categoryName bbox { x y w h } } } } } }`);
    expect(big.headers['content-encoding']).toBe('br');
    expect(JSON.parse(big.body.toString('utf8')).data.samples.edges).toHaveLength(50);
    expect(big.wire.length).toBeLessThan(big.body.length / 3);
    const small = await query('{ datasets { totalCount } }');
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(small.body.toString('utf8'))).toEqual({ data: { datasets: { totalCount: 1 } } });
  });

  test('images never: thumbnails and originals go as they are, and a range of an original still is one', async () => {
    const firstImage = (JSON.parse(fs.readFileSync(DEMO_JSON, 'utf8')) as { images: { id: number }[] }).images[0]!.id;
    for (const size of ['medium', 'original']) {
      const res = await send(h.base, `/images/${id}/${firstImage}?size=${size}`, { 'accept-encoding': BROWSER });
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.headers.vary).toBeUndefined();
    }
    const part = await send(h.base, `/images/${id}/${firstImage}?size=original`, { 'accept-encoding': BROWSER, range: 'bytes=0-99' });
    expect([part.status, part.headers['content-encoding'], part.wire.length]).toEqual([206, undefined, 100]);
  });

  test('event streams never: an ingest streams its events as they come', async () => {
    const res = await send(h.base, '/datasets/ingest', { 'content-type': 'application/json', 'accept-encoding': BROWSER }, 'POST', JSON.stringify({ annotation_path: '/nope.json', image_dir: '/nope' }));
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.body.toString('utf8')).toContain('"stage":"error"');
  });

  test('a small error answer goes as it is', async () => {
    const res = await send(h.base, '/datasets/nope', { 'accept-encoding': BROWSER });
    expect(res.status).toBe(404);
    expect(res.headers['content-encoding']).toBeUndefined();
  });
});

describe('GET /samples and its page cache', () => {
  test('compressed bytes are made once and served again; the ETag is weak when compressed, and either form revalidates', async () => {
    const url = `/samples?dataset_id=${id}&limit=50`;
    const plain = await send(h.base, url);
    expect(plain.headers['content-encoding']).toBeUndefined();
    const strong = plain.headers.etag!;
    expect(strong).toMatch(/^"/);
    const first = await send(h.base, url, { 'accept-encoding': BROWSER });
    const again = await send(h.base, url, { 'accept-encoding': BROWSER });
    expect(first.headers['content-encoding']).toBe('br');
    expect(first.headers.etag).toBe(`W/${strong}`);
    expect(first.headers.vary).toBe('Accept-Encoding');
    expect(again.wire.equals(first.wire)).toBe(true);
    expect(first.body.equals(plain.body)).toBe(true);
    const gz = await send(h.base, url, { 'accept-encoding': 'gzip' });
    expect([gz.headers['content-encoding'], gz.body.equals(plain.body)]).toEqual(['gzip', true]);
    for (const tag of [strong, `W/${strong}`]) {
      expect((await send(h.base, url, { 'accept-encoding': BROWSER, 'if-none-match': tag })).status).toBe(304);
    }
  });

  test('with CORS, Vary names both Origin and Accept-Encoding', async () => {
    const list = JSON.parse((await send(cors.base, '/datasets')).body.toString('utf8'));
    for (const path of [`/samples?dataset_id=${list.datasets[0].id}`, '/openapi.json']) {
      const res = await send(cors.base, path, { origin: 'http://app.example', 'accept-encoding': BROWSER });
      expect(res.headers['content-encoding'], path).toBe('br');
      expect(res.headers.vary, path).toBe('Origin, Accept-Encoding');
      expect(res.headers['access-control-allow-origin']).toBe('http://app.example');
    }
  });
});
