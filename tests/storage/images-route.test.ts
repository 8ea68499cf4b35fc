import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../dist/config.js';
import { startServer, type RunningServer } from '../../dist/server.js';
import { openDataVisor, type DataVisor } from '../../dist/services/app.js';
import { createLogger } from '../../dist/services/logger.js';
import { DEMO, readJson, tempDir } from '../helpers/env.js';
import { deleteObject, putFile, seedDemo, startS3Server, type S3TestServer } from '../helpers/s3.js';

/**
 * The HTTP edge over a dataset in S3: ingest through POST /datasets/ingest, originals streamed
 * through GET /images (type, length, ETag, 304, HEAD) or redirected to a presigned URL, and a
 * missing object answering 404.
 */

interface Running {
  base: string;
  dv: DataVisor;
  close(): Promise<void>;
}

/** The demo dataset (tests/helpers/fixtures.ts), seeded into the bucket. */
const coco = readJson<{ images: { id: number; file_name: string }[]; annotations: unknown[]; categories: unknown[] }>(DEMO.annotations);
let s3: S3TestServer;

async function start(extra: Record<string, string>): Promise<Running> {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'no-plugins'));
  const settings = loadSettings({
    ...s3.env,
    DATAVISOR_PORT: '0',
    DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'),
    DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'),
    DATAVISOR_PLUGIN_DIR: path.join(dir, 'no-plugins'),
    DATAVISOR_DATA_ROOTS: 's3://datasets/demo',
    DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    DATAVISOR_DEMO: '0',
    ...extra,
  }, dir);
  const dv = await openDataVisor(settings, createLogger('silent'));
  const server: RunningServer = await startServer(dv);
  return {
    base: server.url,
    dv,
    async close() {
      await server.close();
      await dv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function ingest(base: string): Promise<{ stage: string; dataset_id?: string; image_count?: number; annotation_count?: number; category_count?: number }> {
  const res = await fetch(`${base}/datasets/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ annotation_path: 's3://datasets/demo/annotations/instances_train2017.json', image_dir: 's3://datasets/demo/train2017' }),
  });
  const events = (await res.text()).split(/\n\n/).map((b) => b.split('\n').find((l) => l.startsWith('data:'))).filter(Boolean)
    .map((l) => JSON.parse(l!.slice(5)) as { stage: string });
  return events.at(-1)!;
}

beforeAll(async () => {
  s3 = await startS3Server();
  await seedDemo(s3.client, 'datasets', 'demo');
});
afterAll(async () => {
  await s3?.stop();
});

describe('GET /images for a dataset in S3', () => {
  let app: Running;
  let id: string;
  beforeAll(async () => {
    app = await start({});
    const last = await ingest(app.base);
    expect(last).toMatchObject({ stage: 'complete', image_count: 128, annotation_count: coco.annotations.length, category_count: coco.categories.length });
    id = last.dataset_id!;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('streams the original with its type, length and ETag; 304 on a match; HEAD without a body', async () => {
    const img = coco.images[0]!;
    const local = fs.readFileSync(path.join(DEMO.images, img.file_name));
    const etag = `"${createHash('md5').update(local).digest('hex')}"`;
    const res = await fetch(`${app.base}/images/${id}/${img.id}?size=original`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-length')).toBe(String(local.length));
    expect(res.headers.get('etag')).toBe(etag);
    expect(Buffer.from(await res.arrayBuffer()).equals(local)).toBe(true);
    const again = await fetch(`${app.base}/images/${id}/${img.id}?size=original`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const head = await fetch(`${app.base}/images/${id}/${img.id}?size=original`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), (await head.arrayBuffer()).byteLength]).toEqual([200, String(local.length), 0]);
  });

  it('answers a Range with 206 and those bytes of the object, 416 past its end, and honours If-Range', async () => {
    const img = coco.images[3]!;
    const local = fs.readFileSync(path.join(DEMO.images, img.file_name));
    const url = `${app.base}/images/${id}/${img.id}?size=original`;
    const whole = await fetch(url);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const etag = whole.headers.get('etag')!;
    await whole.arrayBuffer();

    const part = await fetch(url, { headers: { range: 'bytes=1000-1999', 'if-range': etag } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${local.length}`);
    expect(part.headers.get('content-length')).toBe('1000');
    expect(Buffer.from(await part.arrayBuffer()).equals(local.subarray(1000, 2000))).toBe(true);

    const tail = await fetch(url, { headers: { range: 'bytes=-100' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(local.subarray(local.length - 100))).toBe(true);

    const past = await fetch(url, { headers: { range: `bytes=${local.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${local.length}`);
    expect(((await past.json()) as { error: { code: string } }).error.code).toBe('BAD_USER_INPUT');

    const stale = await fetch(url, { headers: { range: 'bytes=0-9', 'if-range': '"an-older-version"' } });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer()).equals(local)).toBe(true);
  });

  it('makes thumbnails from the bucket', async () => {
    const res = await fetch(`${app.base}/images/${id}/${coco.images[1]!.id}?size=medium`);
    expect(res.status).toBe(200);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.format, meta.width]).toEqual(['webp', 256]);
  });

  it('answers 404 FILE_NOT_FOUND when the object is gone, naming the file and not the bucket', async () => {
    const img = coco.images[2]!;
    await deleteObject(s3.client, 'datasets', `demo/train2017/${img.file_name}`);
    try {
      for (const size of ['original', 'medium']) {
        const res = await fetch(`${app.base}/images/${id}/${img.id}?size=${size}`);
        expect(res.status).toBe(404);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('FILE_NOT_FOUND');
        expect(body.error.message).toContain(img.file_name);
        expect(body.error.message).not.toContain('s3://');
      }
    } finally {
      await seedOne(img.file_name);
    }
  });
});

async function seedOne(name: string) {
  await putFile(s3.client, 'datasets', `demo/train2017/${name}`, path.join(DEMO.images, name), 'image/jpeg');
}

describe('GET /images with DATAVISOR_PRESIGN=1', () => {
  it('redirects originals to a presigned URL that serves the bytes', async () => {
    const app = await start({ DATAVISOR_PRESIGN: '1' });
    try {
      const { dataset_id } = await ingest(app.base);
      const img = coco.images[5]!;
      const res = await fetch(`${app.base}/images/${dataset_id}/${img.id}?size=original`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      const location = res.headers.get('location')!;
      expect(location).toContain('X-Amz-Signature=');
      expect(res.headers.get('cache-control')).toBe('private, no-store');
      const followed = await fetch(location);
      expect(Buffer.from(await followed.arrayBuffer()).equals(fs.readFileSync(path.join(DEMO.images, img.file_name)))).toBe(true);
    } finally {
      await app.close();
    }
  });
});
