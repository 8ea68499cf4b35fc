import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DEMO_IMAGES,
  DEMO_JSON,
  expectHealthy,
  getJson,
  ingest,
  SLOW,
  startTestServer,
  type IngestEventJson,
  type TestServer,
} from './helpers.js';

interface Coco {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { id: number; image_id: number; iscrowd: number }[];
  categories: { id: number; name: string; supercategory: string }[];
}

let t: TestServer;
let coco: Coco;
let events: IngestEventJson[];
let datasetId: string;
let samples: any[];

beforeAll(async () => {
  t = await startTestServer({ thumbnailsOnIngest: 8 });
  coco = JSON.parse(await fs.readFile(DEMO_JSON, 'utf8')) as Coco;
}, SLOW);

afterAll(async () => {
  await t?.close();
});

describe('the full flow on the demo dataset (128 images)', { timeout: SLOW }, () => {
  test('POST /datasets/ingest streams progress as server-sent events and ends with complete', async () => {
    const r = await ingest(t.base, { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES, dataset_name: 'demo' });
    expect(r.res.status).toBe(200);
    expect(r.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(r.res.headers.get('cache-control')).toBe('no-cache');
    expect(r.res.headers.get('x-accel-buffering')).toBe('no');
    expect(r.res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // Every event is one `data: {json}` block; comments (the opening one, heartbeats) start with ":".
    for (const block of r.text.split('\n\n').filter(Boolean)) expect(block).toMatch(/^(data: \{.*\}|: \w+)$/s);
    events = r.events;
    for (const e of events) {
      expect(e).toHaveProperty('stage');
      expect(e).toHaveProperty('current');
      expect(e).toHaveProperty('total');
      expect(typeof e.message).toBe('string');
    }
    const stages = new Set(events.map((e) => e.stage));
    for (const s of ['parsing_images', 'parsing_annotations', 'categories', 'thumbnails', 'complete']) expect(stages).toContain(s);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ stage: 'complete', image_count: 128, annotation_count: coco.annotations.length, category_count: coco.categories.length });
    expect(events.filter((e) => e.stage === 'complete' || e.stage === 'error')).toHaveLength(1);
    datasetId = done.dataset_id!;
    expect(datasetId).toMatch(/^[a-z2-7]{16}$/);
  });

  test('GET /datasets lists it, GET /datasets/{id} has the contract fields', async () => {
    const list = await getJson(`${t.base}/datasets`);
    expect(list.status).toBe(200);
    expect(list.body.datasets.map((d: any) => d.id)).toEqual([datasetId]);
    const one = await getJson(`${t.base}/datasets/${datasetId}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      id: datasetId,
      name: 'demo',
      format: 'coco',
      source_path: DEMO_JSON,
      image_dir: DEMO_IMAGES,
      image_count: 128,
      annotation_count: coco.annotations.length,
      category_count: coco.categories.length,
    });
    expect(new Date(one.body.created_at).toString()).not.toBe('Invalid Date');
    const cats = await getJson(`${t.base}/datasets/${datasetId}/categories`);
    expect(cats.status).toBe(200);
    expect(cats.body.categories).toHaveLength(coco.categories.length);
    // The file's own category ids, gaps kept (docs/demo.md).
    expect(cats.body.categories.find((c: any) => c.name === 'star')).toMatchObject({ id: 11, supercategory: 'polygon' });
  });

  test('paging through /samples with limit 50 sees every sample once, in file order', async () => {
    samples = [];
    for (let offset = 0; ; offset += 50) {
      const page = await getJson(`${t.base}/samples?dataset_id=${datasetId}&offset=${offset}&limit=50`);
      expect(page.status).toBe(200);
      expect(page.body).toMatchObject({ total: 128, offset, limit: 50 });
      samples.push(...page.body.items);
      if (page.body.items.length < 50) break;
    }
    expect(samples).toHaveLength(128);
    expect(new Set(samples.map((s) => s.id)).size).toBe(128);
    expect(samples.map((s) => s.id)).toEqual(coco.images.map((i) => i.id));
    const s = samples[0];
    for (const k of ['id', 'dataset_id', 'file_name', 'width', 'height', 'split', 'thumbnail_url', 'image_url', 'thumbnail_path']) expect(s).toHaveProperty(k);
    // The URLs carry the origin the client used, so they work as they are in <img>.
    expect(s.thumbnail_url).toBe(`${t.base}/images/${datasetId}/${s.id}?size=medium`);
    expect(s.image_url).toBe(`${t.base}/images/${datasetId}/${s.id}?size=original`);
    expect(s.thumbnail_path).toBe(`/images/${datasetId}/${s.id}?size=medium`);
  });

  test('the origin in sample URLs follows the Host the client used', async () => {
    const port = new URL(t.base).port;
    const page = await getJson(`http://localhost:${port}/samples?dataset_id=${datasetId}&limit=1`);
    expect(page.body.items[0].thumbnail_url).toMatch(new RegExp(`^http://localhost:${port}/images/`));
  });

  test('category and extra filters narrow the listing, with their own total', async () => {
    const triangle = await getJson(`${t.base}/samples?dataset_id=${datasetId}&category=triangle&limit=200`);
    const triangleCat = coco.categories.find((c) => c.name === 'triangle')!.id;
    const withTriangle = new Set(coco.annotations.filter((a: any) => a.category_id === triangleCat).map((a) => a.image_id));
    expect(triangle.status).toBe(200);
    expect(triangle.body.total).toBe(withTriangle.size);
    expect(triangle.body.items.map((s: any) => s.id).sort()).toEqual([...withTriangle].sort());
    const crowd = await getJson(`${t.base}/samples?dataset_id=${datasetId}&is_crowd=true&limit=200`);
    const crowdImages = new Set(coco.annotations.filter((a) => a.iscrowd === 1).map((a) => a.image_id));
    expect(crowd.body.total).toBe(crowdImages.size);
    const empty = await getJson(`${t.base}/samples?dataset_id=${datasetId}&max_annotations=0`);
    const annotated = new Set(coco.annotations.map((a) => a.image_id));
    const unannotated = coco.images.filter((i) => !annotated.has(i.id)).map((i) => i.file_name);
    expect(unannotated.length).toBeGreaterThan(0);
    expect(empty.body.items.map((s: any) => s.file_name).sort()).toEqual(unannotated.sort());
    const byName = await getJson(`${t.base}/samples?dataset_id=${datasetId}&file_name_contains=demo_0000&min_annotations=1`);
    expect(byName.body.items.length).toBeGreaterThan(0);
    expect(byName.body.items.every((s: any) => s.file_name.includes('demo_0000') && s.annotation_count >= 1)).toBe(true);
    const none = await getJson(`${t.base}/samples?dataset_id=${datasetId}&category=no-such-category`);
    expect(none.body).toMatchObject({ items: [], total: 0 });
  });

  test('GET /samples/{id}/annotations returns as many annotations as the file has for that image', async () => {
    const counts = new Map<number, number>();
    for (const a of coco.annotations) counts.set(a.image_id, (counts.get(a.image_id) ?? 0) + 1);
    for (const s of samples) {
      const r = await getJson(`${t.base}/samples/${s.id}/annotations?dataset_id=${datasetId}`);
      expect(r.status).toBe(200);
      expect(r.body).toHaveLength(counts.get(s.id) ?? 0);
      for (const a of r.body) {
        expect(a).toMatchObject({ dataset_id: datasetId, sample_id: s.id });
        for (const k of ['id', 'category_name', 'bbox_x', 'bbox_y', 'bbox_w', 'bbox_h', 'area', 'is_crowd', 'source', 'confidence']) expect(a).toHaveProperty(k);
      }
    }
  });

  test('thumbnails of every size are WebP of the right width, never upscaled', async () => {
    const widths = { small: 128, medium: 256, large: 512 } as const;
    // Several samples, including the narrowest images (480 px: large must stay 480).
    const picks = [...samples].sort((a, b) => a.width - b.width).filter((_, i, all) => i < 3 || i % 25 === 0 || i === all.length - 1);
    for (const s of picks) {
      const meta = await sharp(path.join(DEMO_IMAGES, s.file_name)).metadata();
      const shownWidth = (meta.orientation ?? 1) >= 5 ? meta.height! : meta.width!;
      for (const [size, width] of Object.entries(widths)) {
        const res = await fetch(`${t.base}/images/${datasetId}/${s.id}?size=${size}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/webp');
        expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+"$/);
        expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
        expect(res.headers.get('content-length')).toMatch(/^\d+$/);
        expect(res.headers.get('x-request-id')).toBeTruthy();
        const out = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
        expect(out.format).toBe('webp');
        expect(out.width).toBe(Math.min(width, shownWidth));
      }
    }
  });

  test('the default size is medium, and a matching If-None-Match answers 304 (lists and W/ too)', async () => {
    const url = `${t.base}/images/${datasetId}/${samples[5].id}`;
    const first = await fetch(url);
    const body = Buffer.from(await first.arrayBuffer());
    expect((await sharp(body).metadata()).width).toBe(256);
    const etag = first.headers.get('etag')!;
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const again = await fetch(url, { headers: { 'if-none-match': inm } });
      expect(again.status).toBe(304);
      expect(again.headers.get('etag')).toBe(etag);
      expect((await again.arrayBuffer()).byteLength).toBe(0);
    }
    const other = await fetch(url, { headers: { 'if-none-match': '"something-else"' } });
    expect(other.status).toBe(200);
    expect(Buffer.from(await other.arrayBuffer()).equals(body)).toBe(true);
  });

  test('size=original streams the file with its own type, length and an ETag, with 304', async () => {
    const s = samples[3];
    const file = await fs.readFile(path.join(DEMO_IMAGES, s.file_name));
    const res = await fetch(s.image_url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-length')).toBe(String(file.length));
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await res.arrayBuffer()).equals(file)).toBe(true);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    const again = await fetch(s.image_url, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const head = await fetch(s.image_url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(file.length));
  });

  test('DELETE /datasets/{id} answers 204, then the dataset, its samples and thumbnails are gone', async () => {
    const cacheDir = t.dv.settings.cacheDir;
    expect(await fs.readdir(cacheDir)).toContain(datasetId);
    const del = await fetch(`${t.base}/datasets/${datasetId}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe('');
    const gone = await getJson(`${t.base}/datasets/${datasetId}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('NOT_FOUND');
    expect((await getJson(`${t.base}/samples?dataset_id=${datasetId}`)).status).toBe(404);
    expect((await getJson(`${t.base}/samples/${samples[0].id}/annotations?dataset_id=${datasetId}`)).status).toBe(404);
    expect((await fetch(`${t.base}/images/${datasetId}/${samples[0].id}?size=medium`)).status).toBe(404);
    expect((await fetch(`${t.base}/images/${datasetId}/${samples[0].id}?size=original`)).status).toBe(404);
    expect((await fetch(`${t.base}/datasets/${datasetId}`, { method: 'DELETE' })).status).toBe(404);
    expect(await fs.readdir(cacheDir)).not.toContain(datasetId);
    expect((await getJson(`${t.base}/datasets`)).body.datasets).toEqual([]);
    await expectHealthy(t.base);
  });
});
