import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../dist/config.js';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { startFaultProxy, S3_ACCESS_DENIED, S3_SLOW_DOWN, type FaultProxy, type SeenRequest } from '../helpers/fault-proxy.js';
import { dataRoots, DEMO, ingestAll, openTestEnv, readJson, tempDir, type TestEnv } from '../helpers/env.js';
import { deleteObject, putFile, seedDemo, startS3Server, type S3TestServer } from '../helpers/s3.js';

/**
 * s3:// end to end against a real S3-wire-protocol server (s3rver on 127.0.0.1, seeded through
 * the AWS SDK with the demo dataset): ingestion in every mix of local and bucket, thumbnails and originals
 * read from the bucket, missing objects, retries of throttled requests, and the data roots.
 */

interface CocoFile {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { image_id: number }[];
  categories: { id: number }[];
}
/** The demo dataset (tests/helpers/fixtures.ts): 128 JPEGs, a few without annotations. */
const coco = readJson<CocoFile>(DEMO.annotations);
const JSON_SIZE = fs.statSync(DEMO.annotations).size;
const annotated = new Set(coco.annotations.map((a) => a.image_id));
/** An annotated image whose object is deleted from the "gap" copy before its ingest. */
const GAP_IMAGE = coco.images.find((i) => annotated.has(i.id))!;

const ANN = 's3://datasets/demo/annotations/instances_train2017.json';
const IMG = 's3://datasets/demo/train2017';
const GAP_ANN = 's3://datasets/demo-gap/annotations/instances_train2017.json';
const GAP_IMG = 's3://datasets/demo-gap/train2017';

let s3: S3TestServer;
let env: TestEnv;

const roots = [dataRoots(), 's3://datasets/demo', 's3://datasets/demo-gap/', 's3://datasets/odd', 's3://no-such-bucket'].join(',');

beforeAll(async () => {
  s3 = await startS3Server(['datasets', 'elsewhere']);
  await seedDemo(s3.client, 'datasets', 'demo');
  await seedDemo(s3.client, 'datasets', 'demo-gap', { skipImages: [GAP_IMAGE.file_name] });
  await putFile(s3.client, 'elsewhere', 'demo/annotations/instances_train2017.json', DEMO.annotations);
  // A small page size makes the 128-image listing take three pages (continuation tokens).
  env = await openTestEnv({ ...s3.env, DATAVISOR_DATA_ROOTS: roots, DATAVISOR_THUMBNAILS_ON_INGEST: '500' }, { storage: { listPageSize: 50 } });
});

afterAll(async () => {
  await env?.close();
  await s3?.stop();
});

async function ingestOk(dvEnv: TestEnv, request: IngestRequest): Promise<{ events: IngestEvent[]; last: IngestEvent }> {
  const events = await ingestAll(dvEnv.dv, request);
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return { events, last };
}

async function ingestError(dvEnv: TestEnv, request: IngestRequest): Promise<IngestEvent> {
  const events = await ingestAll(dvEnv.dv, request);
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('error');
  return last;
}

/** The counts every full ingest of the demo must have, from the file itself. */
function expectDemoCounts(last: IngestEvent) {
  expect(last.image_count).toBe(128);
  expect(last.annotation_count).toBe(coco.annotations.length);
  expect(last.category_count).toBe(coco.categories.length);
  const empty = last.warnings!.find((w) => w.code === 'images_without_annotations');
  expect(coco.images.filter((i) => !annotated.has(i.id)).length).toBeGreaterThan(0);
  expect(empty?.count).toBe(coco.images.filter((i) => !annotated.has(i.id)).length);
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'resolved';
};

async function readStream(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('ingestion from S3', () => {
  let datasetId: string;

  it('ingests the JSON and the images from the bucket, every count checked, with thumbnails made from the bucket', async () => {
    const before = env.dv.thumbnails.stats.generated;
    const { events, last } = await ingestOk(env, { annotationPath: ANN, imageDir: IMG });
    datasetId = last.dataset_id!;
    expectDemoCounts(last);
    expect(last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
    // Progress is measured against the object's size, read as it downloads.
    expect(events.every((e) => e.bytes_total === JSON_SIZE)).toBe(true);
    expect(last.bytes_read).toBe(JSON_SIZE);
    const thumbs = events.filter((e) => e.stage === 'thumbnails');
    expect(thumbs.at(-1)).toMatchObject({ current: 128, total: 128 });
    expect(thumbs.at(-1)!.message).not.toMatch(/could not/);
    expect(env.dv.thumbnails.stats.generated - before).toBe(128);

    const ds = await env.dv.datasets.get(datasetId);
    expect(ds).toMatchObject({ sourcePath: ANN, imageDir: IMG, name: 'instances_train2017', imageCount: 128 });
    const page = await env.dv.samples.page(datasetId, {}, { kind: 'offset', offset: 0, limit: 200 });
    expect(page.samples.filter((s) => s.fileMissing)).toEqual([]);
  });

  it('serves the thumbnails made on ingest as 256-wide WebP', async () => {
    for (const img of coco.images) {
      const t = await env.dv.samples.thumbnail(datasetId, img.id, 'medium');
      const meta = await sharp(t.body).metadata();
      expect(meta.format).toBe('webp');
      expect(meta.width).toBe(256);
      expect(meta.height).toBe(Math.round((img.height * 256) / img.width));
    }
  });

  it('makes a thumbnail on demand from the bucket', async () => {
    const img = coco.images[7]!;
    const before = env.dv.thumbnails.stats.generated;
    const t = await env.dv.samples.thumbnail(datasetId, img.id, 'large');
    expect(env.dv.thumbnails.stats.generated - before).toBe(1);
    const meta = await sharp(t.body).metadata();
    expect([meta.format, meta.width]).toEqual(['webp', Math.min(512, img.width)]);
  });

  it('serves originals from the bucket: the same bytes, their type, size and ETag', async () => {
    for (const img of coco.images.slice(0, 5)) {
      const local = fs.readFileSync(path.join(DEMO.images, img.file_name));
      const o = await env.dv.samples.openOriginal(datasetId, img.id);
      expect(o).toMatchObject({ contentType: 'image/jpeg', size: local.length, path: null, presignedUrl: null });
      // s3rver's ETag is the MD5 of the bytes, as S3's is for a single-part upload.
      const { createHash } = await import('node:crypto');
      expect(o.etag).toBe(`"${createHash('md5').update(local).digest('hex')}"`);
      expect((await readStream(await o.open())).equals(local)).toBe(true);
    }
  });

  it('keeps imageFile() for local datasets and points bucket datasets to openOriginal()', async () => {
    const local = await ingestOk(env, { annotationPath: DEMO.annotations, imageDir: DEMO.images });
    const f = await env.dv.samples.imageFile(local.last.dataset_id!, coco.images[0]!.id);
    expect(f.path).toBe(fs.realpathSync(path.join(DEMO.images, coco.images[0]!.file_name)));
    const o = await env.dv.samples.openOriginal(local.last.dataset_id!, coco.images[0]!.id);
    expect(o.path).toBe(f.path);
    expect(o.contentType).toBe('image/jpeg');
    expect((await readStream(await o.open())).equals(fs.readFileSync(f.path))).toBe(true);
    expect(await codeOf(env.dv.samples.imageFile(datasetId, coco.images[0]!.id))).toBe('INTERNAL');
  });

  it('ingests a local JSON with images in the bucket, and a JSON in the bucket with local images', async () => {
    const a = await ingestOk(env, { annotationPath: DEMO.annotations, imageDir: IMG, datasetName: 'local json' });
    expectDemoCounts(a.last);
    expect(a.last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
    expect((await env.dv.datasets.get(a.last.dataset_id!)).imageDir).toBe(IMG);

    const b = await ingestOk(env, { annotationPath: ANN, imageDir: DEMO.images, datasetName: 'bucket json' });
    expectDemoCounts(b.last);
    expect(b.last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
    expect((await env.dv.datasets.get(b.last.dataset_id!)).sourcePath).toBe(ANN);
  });

  it('reports a missing object as image_files_missing, and FILE_NOT_FOUND when it is asked for', async () => {
    const { events, last } = await ingestOk(env, { annotationPath: GAP_ANN, imageDir: GAP_IMG });
    expect(last.image_count).toBe(128);
    const missing = last.warnings!.find((w) => w.code === 'image_files_missing');
    expect(missing).toMatchObject({ count: 1, examples: [GAP_IMAGE.file_name] });
    expect(events.filter((e) => e.stage === 'thumbnails').at(-1)).toMatchObject({ current: 127, total: 127 });
    const id = last.dataset_id!;
    expect((await env.dv.samples.get(id, GAP_IMAGE.id)).fileMissing).toBe(true);
    expect(await codeOf(env.dv.samples.thumbnail(id, GAP_IMAGE.id, 'medium'))).toBe('FILE_NOT_FOUND');
    expect(await codeOf(env.dv.samples.openOriginal(id, GAP_IMAGE.id))).toBe('FILE_NOT_FOUND');

    // An object deleted after the ingest: 404 too, and the message names the file, not the bucket.
    const gone = coco.images[20]!;
    await deleteObject(s3.client, 'datasets', `demo-gap/train2017/${gone.file_name}`);
    const err = await env.dv.samples.thumbnail(id, gone.id, 'large').catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('FILE_NOT_FOUND');
    expect((err as Error).message).toContain(gone.file_name);
    expect((err as Error).message).not.toContain('s3://');
    expect(await codeOf(env.dv.samples.openOriginal(id, gone.id))).toBe('FILE_NOT_FOUND');
  });

  it('refuses file_names that leave the image folder, in a bucket too', async () => {
    const odd = { images: [
      { id: 1, file_name: '../demo/train2017/000000000009.jpg', width: 640, height: 480 },
      { id: 2, file_name: 'ok/../../x.jpg', width: 640, height: 480 },
    ], annotations: [], categories: [{ id: 1, name: 'a' }] };
    await s3.client.send(new PutObjectCommand({ Bucket: 'datasets', Key: 'odd/odd.json', Body: JSON.stringify(odd) }));
    await s3.client.send(new PutObjectCommand({ Bucket: 'datasets', Key: 'odd/images/a.jpg', Body: 'x' }));
    const { last } = await ingestOk(env, { annotationPath: 's3://datasets/odd/odd.json', imageDir: 's3://datasets/odd/images' });
    expect(last.warnings!.find((w) => w.code === 'image_files_refused')).toMatchObject({ count: 2, examples: odd.images.map((i) => i.file_name) });
    expect(last.warnings!.find((w) => w.code === 'image_files_missing')).toBeUndefined();
    expect(await codeOf(env.dv.samples.openOriginal(last.dataset_id!, 1))).toBe('FORBIDDEN');
    expect(await codeOf(env.dv.samples.thumbnail(last.dataset_id!, 2, 'small'))).toBe('FORBIDDEN');
  });
});

describe('data roots with buckets', () => {
  it('refuses buckets and prefixes outside the roots with FORBIDDEN, before reading anything', async () => {
    const cases: [string, string][] = [
      ['s3://elsewhere/demo/annotations/instances_train2017.json', IMG],
      // A sibling prefix that starts like a root is not inside it.
      ['s3://datasets/demo0/annotations/instances_train2017.json', IMG],
      ['s3://datasets/demo-gapx/a.json', IMG],
      ['s3://datasets/annotations.json', IMG],
      [ANN, 's3://elsewhere/demo'],
      [ANN, 's3://datasets'],
      [ANN, 'gs://datasets/demo/train2017'],
      // `..` is refused in bucket URLs rather than resolved.
      ['s3://datasets/demo/../elsewhere/a.json', IMG],
      [ANN, 's3://datasets/demo/train2017/../../x'],
    ];
    for (const [annotationPath, imageDir] of cases) {
      const e = await ingestError(env, { annotationPath, imageDir });
      expect([annotationPath, imageDir, e.code]).toEqual([annotationPath, imageDir, 'FORBIDDEN']);
      expect(e.message).toMatch(/DATAVISOR_DATA_ROOTS|not allowed/);
    }
  });

  it('normalizes bucket URLs: duplicate and trailing slashes, scheme case', async () => {
    const { last } = await ingestOk(env, {
      annotationPath: 'S3://datasets//demo/annotations//instances_train2017.json',
      imageDir: 's3://datasets/demo/train2017/',
      datasetName: 'normalized',
    });
    const ds = await env.dv.datasets.get(last.dataset_id!);
    expect([ds.sourcePath, ds.imageDir]).toEqual([ANN, IMG]);
  });

  it('answers FILE_NOT_FOUND inside the roots for a missing object, an empty prefix and a missing bucket, BAD_USER_INPUT for a malformed URL', async () => {
    expect((await ingestError(env, { annotationPath: 's3://datasets/demo/annotations/nope.json', imageDir: IMG })).code).toBe('FILE_NOT_FOUND');
    expect((await ingestError(env, { annotationPath: ANN, imageDir: 's3://datasets/demo/nothing-here' })).code).toBe('FILE_NOT_FOUND');
    const nb = await ingestError(env, { annotationPath: 's3://no-such-bucket/a.json', imageDir: IMG });
    expect(nb.code).toBe('FILE_NOT_FOUND');
    expect((await ingestError(env, { annotationPath: 's3://x/a.json', imageDir: IMG })).code).toBe('BAD_USER_INPUT');
    // A prefix holding objects is a folder: named as one, with what to pass instead.
    const folder = await ingestError(env, { annotationPath: 's3://datasets/demo', imageDir: IMG });
    expect([folder.code, folder.message]).toEqual(['BAD_USER_INPUT', expect.stringMatching(/^annotation_path "demo" is not in a format DataVisor reads \(coco, voc, yolo\): it looks like a folder/)]);
  });

  it('reads the standard AWS variables into the settings', () => {
    expect(loadSettings({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' }, '/tmp').s3).toEqual({
      endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true, credentials: null,
    });
    expect(loadSettings({ AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_S3: 'http://b', AWS_REGION: 'eu-west-3', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' }, '/tmp').s3)
      .toEqual({ endpoint: 'http://b', region: 'eu-west-3', forcePathStyle: true, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    expect(loadSettings({}, '/tmp').s3).toEqual({ endpoint: null, region: null, forcePathStyle: false, credentials: null });
    expect(loadSettings({ DATAVISOR_PRESIGN: '1' }, '/tmp').presign).toBe(true);
  });
});

describe('retries against a throttling S3', () => {
  let proxy: FaultProxy;
  let flaky: TestEnv;
  const isList = (r: SeenRequest) => r.method === 'GET' && r.url.includes('list-type=2');
  const isObject = (method: string, key: string) => (r: SeenRequest) => r.method === method && r.url.split('?')[0] === `/datasets/${key}`;
  const annKey = 'demo/annotations/instances_train2017.json';

  beforeAll(async () => {
    proxy = await startFaultProxy(s3.endpoint);
    flaky = await openTestEnv(
      { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.url, DATAVISOR_DATA_ROOTS: roots, DATAVISOR_THUMBNAILS_ON_INGEST: '4' },
      { storage: { listPageSize: 50, retry: { baseDelayMs: 5, maxDelayMs: 50 } } },
    );
  });
  afterAll(async () => {
    await flaky?.close();
    await proxy?.close();
  });

  it('retries SlowDown, 500s and dropped connections, and the ingest completes with every count', async () => {
    proxy.clear();
    const firstImage = `demo/train2017/${coco.images[0]!.file_name}`;
    proxy.fail({ match: isObject('HEAD', annKey), times: 1, fault: S3_SLOW_DOWN });
    proxy.fail({ match: isObject('GET', annKey), times: 2, fault: S3_SLOW_DOWN });
    proxy.fail({ match: isList, times: 1, fault: 'reset' });
    proxy.fail({ match: (r) => isList(r) && r.url.includes('continuation-token'), times: 1, fault: { status: 500, body: '' } });
    proxy.fail({ match: isObject('GET', firstImage), times: 3, fault: S3_SLOW_DOWN });
    const { last } = await ingestOk(flaky, { annotationPath: ANN, imageDir: IMG });
    expectDemoCounts(last);
    expect(last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');

    const count = (m: (r: SeenRequest) => boolean) => proxy.seen.filter(m).length;
    expect(count(isObject('HEAD', annKey))).toBe(2);
    expect(count(isObject('GET', annKey))).toBe(3);
    expect(count(isObject('GET', firstImage))).toBe(4);
    // One listing to see that the folder is not empty (reset once), then three pages of 50 (the second failing once).
    expect(count(isList)).toBe(2 + 3 + 1);
    expect(count((r) => isList(r) && r.url.includes('continuation-token'))).toBe(3);
    expect(count((r) => isList(r) && r.url.includes('max-keys=50'))).toBe(6);
  });

  it('gives up after 4 attempts with UNAVAILABLE, leaving nothing behind', async () => {
    proxy.clear();
    proxy.fail({ match: isObject('GET', annKey), times: 100, fault: S3_SLOW_DOWN });
    const before = await flaky.dv.datasets.count();
    const e = await ingestError(flaky, { annotationPath: ANN, imageDir: IMG });
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/after 4 attempts.*SlowDown/);
    expect(proxy.seen.filter(isObject('GET', annKey)).length).toBe(4);
    expect(await flaky.dv.datasets.count()).toBe(before);
  });

  it('does not retry AccessDenied: FORBIDDEN after one request', async () => {
    proxy.clear();
    proxy.fail({ match: isObject('HEAD', annKey), times: 100, fault: S3_ACCESS_DENIED });
    const e = await ingestError(flaky, { annotationPath: ANN, imageDir: IMG });
    expect(e.code).toBe('FORBIDDEN');
    expect(e.message).toMatch(/denied/);
    expect(proxy.seen.filter(isObject('HEAD', annKey)).length).toBe(1);
  });

  it('retries reads of thumbnails and originals when serving', async () => {
    proxy.clear();
    const { last } = await ingestOk(flaky, { annotationPath: ANN, imageDir: IMG });
    const img = coco.images[40]!;
    const key = `demo/train2017/${img.file_name}`;
    proxy.clear();
    proxy.fail({ match: isObject('GET', key), times: 2, fault: { status: 503, body: '' } });
    proxy.fail({ match: isObject('HEAD', key), times: 1, fault: 'reset' });
    const t = await flaky.dv.samples.thumbnail(last.dataset_id!, img.id, 'small');
    expect((await sharp(t.body).metadata()).width).toBe(128);
    const o = await flaky.dv.samples.openOriginal(last.dataset_id!, img.id);
    expect((await readStream(await o.open())).equals(fs.readFileSync(path.join(DEMO.images, img.file_name)))).toBe(true);
    expect(proxy.seen.filter(isObject('GET', key)).length).toBe(3 + 1);
    expect(proxy.seen.filter(isObject('HEAD', key)).length).toBe(2);
  });
});

describe('presigned originals', () => {
  it('hands out a presigned URL when DATAVISOR_PRESIGN=1, which reads the same bytes', async () => {
    const signed = await openTestEnv({ ...s3.env, DATAVISOR_DATA_ROOTS: roots, DATAVISOR_PRESIGN: '1' });
    try {
      const { last } = await ingestOk(signed, { annotationPath: ANN, imageDir: IMG });
      const img = coco.images[3]!;
      const o = await signed.dv.samples.openOriginal(last.dataset_id!, img.id);
      expect(o.presignedUrl).toMatch(new RegExp(`^${s3.endpoint}/datasets/demo/train2017/${img.file_name}\\?.*X-Amz-Signature=`));
      const res = await fetch(o.presignedUrl!);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(path.join(DEMO.images, img.file_name)))).toBe(true);
      // Local datasets are never redirected.
      const local = await ingestOk(signed, { annotationPath: DEMO.annotations, imageDir: DEMO.images });
      expect((await signed.dv.samples.openOriginal(local.last.dataset_id!, img.id)).presignedUrl).toBeNull();
    } finally {
      await signed.close();
    }
  });
});

describe('the CLI, configured by the environment', () => {
  it('ingests from the bucket with AWS_* variables in process.env', async () => {
    const dir = tempDir();
    try {
      const bin = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
      const { stdout } = await promisify(execFile)(process.execPath, [bin, 'ingest', ANN, IMG, '--json'], {
        cwd: dir,
        env: {
          ...process.env, ...s3.env,
          DATAVISOR_DATA_ROOTS: 's3://datasets/demo', DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'),
          DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'), DATAVISOR_PLUGIN_DIR: path.join(dir, 'none'), DATAVISOR_THUMBNAILS_ON_INGEST: '0',
        },
      });
      const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as IngestEvent;
      expect(last.stage).toBe('complete');
      expectDemoCounts(last);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
