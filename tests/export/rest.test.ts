import { get } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_IMAGES, DEMO_JSON, startHarness, type Harness } from '../graphql/harness.js';
import { bigCocoFile, readJson } from '../helpers/fixtures.js';

/**
 * GET /datasets/{id}/export on a real server (127.0.0.1), and GraphQL's Dataset.exportUrl, with and
 * without an API token. Expected samples come from the demo's COCO file, read here.
 */

interface Coco {
  images: { id: number; file_name: string }[];
  annotations: { id: number; image_id: number; category_id: number; area: number; iscrowd: number }[];
  categories: { id: number; name: string }[];
}

const TOKEN = 'dv-export-test-token-1b2c3d';
const demo = () => readJson<Coco>(DEMO_JSON);

describe('REST export (open server)', () => {
  let h: Harness;
  let id: string;
  beforeAll(async () => {
    h = await startHarness({ env: { DATAVISOR_THUMBNAILS_ON_INGEST: '0' } });
    id = await h.ingest(DEMO_JSON, DEMO_IMAGES, { datasetName: 'demo' });
  });
  afterAll(() => h.close());

  it('streams the filtered view as an attachment, gzip when asked, with its counts', async () => {
    const coco = demo();
    const circle = coco.categories.find((c) => c.name === 'circle')!;
    const star = coco.categories.find((c) => c.name === 'star')!;
    const wanted = new Set([circle.id, star.id]);
    // Samples with a circle or a star, and at most 3 annotations in all: computed from the file.
    const perImage = new Map<number, number>();
    for (const a of coco.annotations) perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
    const images = coco.images.filter((i) => (perImage.get(i.id) ?? 0) <= 3 && coco.annotations.some((a) => a.image_id === i.id && wanted.has(a.category_id)));
    const imageIds = new Set(images.map((i) => i.id));
    const annotations = coco.annotations.filter((a) => imageIds.has(a.image_id) && wanted.has(a.category_id));
    expect(images.length).toBeGreaterThan(0);

    const url = `${h.base}/datasets/${id}/export?categories=circle&categories=star&max_annotations=3`;
    const res = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="demo.json"');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('x-datavisor-image-count')).toBe(String(images.length));
    expect(res.headers.get('x-datavisor-annotation-count')).toBe(String(annotations.length));
    // fetch decodes gzip itself; the header says it was used.
    expect(res.headers.get('content-encoding')).toBe('gzip');
    const body = (await res.json()) as Coco;
    expect(body.images.map((i) => i.id)).toEqual(images.map((i) => i.id));
    expect(body.annotations.map((a) => a.id)).toEqual(annotations.map((a) => a.id));
    expect(body.categories.map((c) => c.name).sort()).toEqual(['circle', 'star']);

    // The raw bytes are gzip, and identical once decoded to the identity answer.
    const raw = await new Promise<Buffer>((resolve, reject) => {
      get(url, { headers: { 'accept-encoding': 'gzip' } }, (r) => {
        const parts: Buffer[] = [];
        r.on('data', (d: Buffer) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
      }).on('error', reject);
    });
    const plain = await (await fetch(url)).text();
    expect(gunzipSync(raw).toString('utf8')).toBe(plain);
  });

  it('answers 400 naming the parameter, 404 for an unknown dataset or run, before any byte', async () => {
    const bad = async (q: string) => {
      const res = await fetch(`${h.base}/datasets/${id}/export${q}`);
      return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
    };
    expect(await bad('?format=yolo')).toEqual({ status: 400, body: { error: { code: 'BAD_USER_INPUT', message: expect.stringMatching(/"format" must be one of coco, coco_results/) } } });
    expect(await bad('?format=coco_results')).toMatchObject({ status: 400, body: { error: { code: 'BAD_USER_INPUT', message: expect.stringMatching(/predictions=RUN/) } } });
    expect(await bad('?min_annotations=-1')).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/min_annotations/) } } });
    expect(await bad('?catgory=circle')).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/unknown parameter "catgory"/) } } });
    expect(await bad('?predictions=none')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    const unknown = await fetch(`${h.base}/datasets/aaaaaaaaaaaaaaaa/export`);
    expect(unknown.status).toBe(404);
  });

  it('a client that goes away mid-download stops the export and frees its connection', async () => {
    // A 12,000-image file: its export (~8 MB) is far more than the socket buffers hold.
    const own = await startHarness({ env: { DATAVISOR_THUMBNAILS_ON_INGEST: '0' } });
    try {
      const big = await own.ingest(await bigCocoFile(), own.tmp, { datasetName: 'big' });
      const received = await new Promise<number>((resolve, reject) => {
        const req = get(`${own.base}/datasets/${big}/export`, (res) => {
          res.once('data', (d: Buffer) => {
            req.destroy();
            resolve(d.length);
          });
        });
        req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      });
      expect(received).toBeGreaterThan(0);
      for (let i = 0; i < 4; i++) {
        const again = await fetch(`${own.base}/datasets/${big}/export?split=none`);
        expect(((await again.json()) as Coco).images).toEqual([]);
      }
    } finally {
      // Closing fails ("DuckDB was left open") if the abandoned export still held its connection.
      await own.close();
    }
  });

  it('GraphQL exportUrl hands out the REST URL of the same filter, unsigned on an open server', async () => {
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { exportUrl(filter: { category: "circle", maxAnnotations: 3 }) } }`, { id });
    const url = r.data.dataset.exportUrl as string;
    expect(url).toBe(`${h.base}/datasets/${id}/export?format=coco&category=circle&max_annotations=3`);
    const direct = await (await fetch(`${h.base}/datasets/${id}/export?category=circle&max_annotations=3`)).text();
    expect(await (await fetch(url)).text()).toBe(direct);
    // Lists repeat their parameter; every filter field has its REST spelling.
    const many = await h.gql(`query($id: ID!) { dataset(id: $id) { exportUrl(filter: { categories: ["circle", "star"], minWidth: 1, fileNameGlob: "*.*" }) } }`, { id });
    const manyUrl = many.data.dataset.exportUrl as string;
    expect(manyUrl).toBe(`${h.base}/datasets/${id}/export?format=coco&categories=circle&categories=star&file_name_glob=*.*&min_width=1`);
    const filtered = JSON.parse(await (await fetch(manyUrl)).text());
    expect(filtered.images.length).toBeGreaterThan(0);
    expect(filtered).toEqual(JSON.parse(await (await fetch(`${h.base}/datasets/${id}/export?categories=star&categories=circle&min_width=1&file_name_glob=*.*`)).text()));

    const missing = await h.gql(`query($id: ID!) { dataset(id: $id) { exportUrl(predictions: "nope") } }`, { id });
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const bad = await h.gql(`query($id: ID!) { dataset(id: $id) { exportUrl(format: COCO_RESULTS) } }`, { id });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('REST export with DATAVISOR_API_TOKEN', () => {
  let h: Harness;
  let id: string;
  const auth = { authorization: `Bearer ${TOKEN}` };
  beforeAll(async () => {
    h = await startHarness({ env: { DATAVISOR_API_TOKEN: TOKEN, DATAVISOR_THUMBNAILS_ON_INGEST: '0' } });
    id = await h.ingest(DEMO_JSON, DEMO_IMAGES, { datasetName: 'demo' });
  });
  afterAll(() => h.close());

  it('needs the token, or the signed URL exportUrl hands out, which no parameter change keeps valid', async () => {
    expect((await fetch(`${h.base}/datasets/${id}/export`)).status).toBe(401);
    expect((await fetch(`${h.base}/datasets/${id}/export?split=none`, { headers: auth })).status).toBe(200);

    const res = await fetch(`${h.base}/graphql`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `query($id: ID!) { dataset(id: $id) { exportUrl(filter: { category: "star" }) } }`, variables: { id } }),
    });
    const url = ((await res.json()) as { data: { dataset: { exportUrl: string } } }).data.dataset.exportUrl;
    expect(url).toMatch(/\/export\?format=coco&category=star&exp=\d+&sig=[A-Za-z0-9_-]{43}$/);
    const signed = await fetch(url);
    expect(signed.status).toBe(200);
    const stars = demo().categories.find((c) => c.name === 'star')!.id;
    expect(((await signed.json()) as Coco).annotations.every((a) => a.category_id === stars)).toBe(true);

    const changed = await fetch(url.replace('category=star', 'category=circle'));
    expect(changed.status).toBe(403);
    expect(((await changed.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
  });
});
