import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../dist/config.js';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { gcsFault, startFaultProxy, type FaultProxy, type SeenRequest } from '../helpers/fault-proxy.js';
import { dataRoots, DEMO, ingestAll, openTestEnv, readJson, tempDir, type TestEnv } from '../helpers/env.js';
import { crc32c, startGcsServer, type GcsTestServer } from '../helpers/gcs-server.js';

/**
 * gs:// end to end: Google's own client (@google-cloud/storage) against tests/helpers/gcs-server.ts,
 * a server speaking the JSON API wire protocol over a local folder. Same checks as for S3:
 * ingestion in every mix, thumbnails and originals from the bucket, pagination, a missing object,
 * retried 503/429s, the data roots.
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
const GAP_IMAGE = coco.images.find((i) => annotated.has(i.id))!;

const ANN = 'gs://datasets/demo/annotations/instances_train2017.json';
const IMG = 'gs://datasets/demo/train2017';
const roots = [dataRoots(), 'gs://datasets/demo', 'gs://datasets/demo-gap'].join(',');

let root: string;
let gcs: GcsTestServer;
let env: TestEnv;

/** Lays the demo dataset out as objects `<bucket>/<prefix>/annotations/…json` and `<bucket>/<prefix>/train2017/*.jpg`. */
function seed(bucket: string, prefix: string, skip: string[] = []) {
  const dir = path.join(root, bucket, prefix);
  fs.mkdirSync(path.join(dir, 'annotations'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'train2017'), { recursive: true });
  fs.copyFileSync(DEMO.annotations, path.join(dir, 'annotations/instances_train2017.json'));
  for (const n of fs.readdirSync(DEMO.images)) {
    if (!skip.includes(n)) fs.copyFileSync(path.join(DEMO.images, n), path.join(dir, 'train2017', n));
  }
}

beforeAll(async () => {
  root = tempDir('dv-gcs-');
  seed('datasets', 'demo');
  seed('datasets', 'demo-gap', [GAP_IMAGE.file_name]);
  seed('elsewhere', 'demo');
  gcs = await startGcsServer(root);
  // A page size of 20 makes the 128-image listing take 7 pages.
  env = await openTestEnv(
    { STORAGE_EMULATOR_HOST: gcs.url, DATAVISOR_DATA_ROOTS: roots, DATAVISOR_THUMBNAILS_ON_INGEST: '500' },
    { storage: { listPageSize: 20 } },
  );
});

afterAll(async () => {
  await env?.close();
  await gcs?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

async function ingestOk(dvEnv: TestEnv, request: IngestRequest) {
  const events = await ingestAll(dvEnv.dv, request);
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return { events, last };
}

async function ingestError(dvEnv: TestEnv, request: IngestRequest): Promise<IngestEvent> {
  const last = (await ingestAll(dvEnv.dv, request)).at(-1)!;
  expect(last.stage, last.message).toBe('error');
  return last;
}

function expectDemoCounts(last: IngestEvent) {
  expect([last.image_count, last.annotation_count, last.category_count]).toEqual([128, coco.annotations.length, coco.categories.length]);
  expect(last.warnings!.find((w) => w.code === 'images_without_annotations')?.count).toBe(coco.images.filter((i) => !annotated.has(i.id)).length);
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);

async function readStream(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('the GCS test server speaks the JSON API', () => {
  const api = (p: string, init?: RequestInit) => fetch(`${gcs.url}/storage/v1${p}`, init);
  const first = coco.images[0]!.file_name;
  const obj = encodeURIComponent(`demo/train2017/${first}`);
  const bytes = () => fs.readFileSync(path.join(DEMO.images, first));

  it('answers object metadata with string sizes and base64 hashes', async () => {
    const res = await api(`/b/datasets/o/${obj}`);
    expect(res.status).toBe(200);
    const m = (await res.json()) as Record<string, string>;
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32c(bytes()));
    expect(m).toMatchObject({
      kind: 'storage#object', bucket: 'datasets', name: `demo/train2017/${first}`, size: String(bytes().length),
      contentType: 'image/jpeg', crc32c: crc.toString('base64'), metageneration: '1',
    });
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('downloads media with ranges (206, 416) and JSON error bodies', async () => {
    const whole = await api(`/b/datasets/o/${obj}?alt=media`);
    expect(whole.headers.get('x-goog-hash')).toMatch(/^crc32c=.+,md5=.+$/);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes())).toBe(true);
    const part = await api(`/b/datasets/o/${obj}?alt=media`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${bytes().length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes().subarray(10, 20))).toBe(true);
    const tail = await api(`/b/datasets/o/${obj}?alt=media`, { headers: { range: 'bytes=-5' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes().subarray(-5))).toBe(true);
    expect((await api(`/b/datasets/o/${obj}?alt=media`, { headers: { range: `bytes=${bytes().length}-` } })).status).toBe(416);
    const missing = await api('/b/datasets/o/nope');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { code: 404, message: 'No such object: datasets/nope', errors: [{ message: 'No such object: datasets/nope', domain: 'global', reason: 'notFound' }] },
    });
    expect((await api('/b/no-bucket/o/x')).status).toBe(404);
  });

  it('lists in pages with nextPageToken', async () => {
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const q = new URLSearchParams({ prefix: 'demo/train2017/', maxResults: '50', ...(token ? { pageToken: token } : {}) });
      const page = (await (await api(`/b/datasets/o?${q}`)).json()) as { kind: string; items?: { name: string }[]; nextPageToken?: string };
      expect(page.kind).toBe('storage#objects');
      names.push(...(page.items ?? []).map((i) => i.name));
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(names).toEqual(fs.readdirSync(DEMO.images).sort().map((n) => `demo/train2017/${n}`));
    const byFolder = (await (await api('/b/datasets/o?delimiter=/&prefix=demo/')).json()) as { prefixes: string[] };
    expect(byFolder.prefixes).toEqual(['demo/annotations/', 'demo/train2017/']);
  });
});

describe('ingestion from GCS', () => {
  let datasetId: string;

  it('ingests the JSON and the images from the bucket, listing page by page, every count checked', async () => {
    gcs.seen.length = 0;
    const before = env.dv.thumbnails.stats.generated;
    const { events, last } = await ingestOk(env, { annotationPath: ANN, imageDir: IMG });
    datasetId = last.dataset_id!;
    expectDemoCounts(last);
    expect(last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
    expect(events.every((e) => e.bytes_total === JSON_SIZE)).toBe(true);
    expect(last.bytes_read).toBe(JSON_SIZE);
    expect(events.filter((e) => e.stage === 'thumbnails').at(-1)).toMatchObject({ current: 128, total: 128 });
    expect(env.dv.thumbnails.stats.generated - before).toBe(128);
    expect(await env.dv.datasets.get(datasetId)).toMatchObject({ sourcePath: ANN, imageDir: IMG });
    // The settings pass the endpoint to the client, which adds /storage/v1; pages of 20, names only.
    const lists = gcs.seen.filter((r) => r.url.startsWith('/storage/v1/b/datasets/o?') && r.url.includes('maxResults=20'));
    expect(lists.filter((r) => r.url.includes('pageToken=')).length).toBe(6);
    expect(lists.every((r) => decodeURIComponent(r.url).includes('fields=items(name),nextPageToken'))).toBe(true);
  });

  it('serves thumbnails (256-wide WebP) and originals (same bytes, type, ETag) from the bucket', async () => {
    for (const img of coco.images) {
      const meta = await sharp((await env.dv.samples.thumbnail(datasetId, img.id, 'medium')).body).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', 256, Math.round((img.height * 256) / img.width)]);
    }
    for (const img of coco.images.slice(0, 5)) {
      const local = fs.readFileSync(path.join(DEMO.images, img.file_name));
      const o = await env.dv.samples.openOriginal(datasetId, img.id);
      const m = (await (await fetch(`${gcs.url}/storage/v1/b/datasets/o/${encodeURIComponent(`demo/train2017/${img.file_name}`)}`)).json()) as { etag: string };
      expect(o).toMatchObject({ contentType: 'image/jpeg', size: local.length, etag: `"${m.etag}"`, path: null, presignedUrl: null });
      expect((await readStream(await o.open())).equals(local)).toBe(true);
      // What GET /images answers a Range with (206): the object's bytes in that inclusive range.
      expect((await readStream(await o.open({ start: 100, end: 1099 }))).equals(local.subarray(100, 1100))).toBe(true);
    }
  });

  it('ingests a local JSON with images in the bucket, and a JSON in the bucket with local images', async () => {
    const a = await ingestOk(env, { annotationPath: DEMO.annotations, imageDir: IMG });
    expectDemoCounts(a.last);
    expect(a.last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
    const b = await ingestOk(env, { annotationPath: ANN, imageDir: DEMO.images });
    expectDemoCounts(b.last);
    expect(b.last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
  });

  it('reports a missing object as image_files_missing, and FILE_NOT_FOUND when it is asked for', async () => {
    const { last } = await ingestOk(env, { annotationPath: 'gs://datasets/demo-gap/annotations/instances_train2017.json', imageDir: 'gs://datasets/demo-gap/train2017' });
    expect(last.warnings!.find((w) => w.code === 'image_files_missing')).toMatchObject({ count: 1, examples: [GAP_IMAGE.file_name] });
    const id = last.dataset_id!;
    expect(await codeOf(env.dv.samples.thumbnail(id, GAP_IMAGE.id, 'medium'))).toBe('FILE_NOT_FOUND');
    expect(await codeOf(env.dv.samples.openOriginal(id, GAP_IMAGE.id))).toBe('FILE_NOT_FOUND');
    const gone = coco.images[30]!;
    fs.rmSync(path.join(root, 'datasets/demo-gap/train2017', gone.file_name));
    expect(await codeOf(env.dv.samples.thumbnail(id, gone.id, 'large'))).toBe('FILE_NOT_FOUND');
    expect(await codeOf(env.dv.samples.openOriginal(id, gone.id))).toBe('FILE_NOT_FOUND');
  });

  it('refuses buckets outside the roots and `..` with FORBIDDEN; FILE_NOT_FOUND inside them', async () => {
    for (const [annotationPath, imageDir] of [
      ['gs://elsewhere/demo/annotations/instances_train2017.json', IMG],
      ['gs://datasets/demo0/a.json', IMG],
      [ANN, 's3://datasets/demo/train2017'],
      [ANN, 'gs://datasets/demo/../elsewhere'],
    ] as const) {
      expect(await ingestError(env, { annotationPath, imageDir })).toMatchObject({ code: 'FORBIDDEN' });
    }
    expect((await ingestError(env, { annotationPath: 'gs://datasets/demo/none.json', imageDir: IMG })).code).toBe('FILE_NOT_FOUND');
    expect((await ingestError(env, { annotationPath: ANN, imageDir: 'gs://datasets/demo/empty' })).code).toBe('FILE_NOT_FOUND');
  });

  it('reads STORAGE_EMULATOR_HOST into the settings (a trailing /storage/v1 dropped)', () => {
    expect(loadSettings({ STORAGE_EMULATOR_HOST: 'http://127.0.0.1:9023/storage/v1/' }, '/tmp').gcs).toEqual({
      apiEndpoint: 'http://127.0.0.1:9023', keyFilename: null, projectId: null,
    });
  });
});

describe('retries against a failing GCS', () => {
  let proxy: FaultProxy;
  let flaky: TestEnv;
  const annPath = `/storage/v1/b/datasets/o/${encodeURIComponent('demo/annotations/instances_train2017.json')}`;
  const isMedia = (p: string) => (r: SeenRequest) => r.url.startsWith(`${p}?`) && r.url.includes('alt=media');
  const isMeta = (p: string) => (r: SeenRequest) => r.url === p || (r.url.startsWith(`${p}?`) && !r.url.includes('alt=media'));
  const isList = (r: SeenRequest) => r.url.startsWith('/storage/v1/b/datasets/o?');

  beforeAll(async () => {
    proxy = await startFaultProxy(gcs.url);
    flaky = await openTestEnv({ STORAGE_EMULATOR_HOST: proxy.url, DATAVISOR_DATA_ROOTS: roots, DATAVISOR_THUMBNAILS_ON_INGEST: '4' }, {
      storage: { listPageSize: 50, retry: { baseDelayMs: 5, maxDelayMs: 50 } },
    });
  });
  afterAll(async () => {
    await flaky?.close();
    await proxy?.close();
  });

  it('retries 503, 429 and dropped connections, and the ingest completes with every count', async () => {
    proxy.clear();
    const img0 = `/storage/v1/b/datasets/o/${encodeURIComponent(`demo/train2017/${coco.images[0]!.file_name}`)}`;
    proxy.fail({ match: isMeta(annPath), times: 1, fault: 'reset' });
    proxy.fail({ match: isMedia(annPath), times: 2, fault: gcsFault(503, 'backendError', 'Backend Error') });
    proxy.fail({ match: isList, times: 1, fault: gcsFault(429, 'rateLimitExceeded', 'The rate of change requests to the object is too high.') });
    proxy.fail({ match: isMedia(img0), times: 3, fault: gcsFault(503, 'backendError', 'Backend Error') });
    const { last } = await ingestOk(flaky, { annotationPath: ANN, imageDir: IMG });
    expectDemoCounts(last);
    expect(last.warnings!.map((w) => w.code)).not.toContain('image_files_missing');
    const count = (m: (r: SeenRequest) => boolean) => proxy.seen.filter(m).length;
    expect(count(isMeta(annPath))).toBe(2);
    expect(count(isMedia(annPath))).toBe(3);
    expect(count(isMedia(img0))).toBe(4);
    // Existence check (429 once, then page 1), then pages 1-3 of the listing.
    expect(count(isList)).toBe(2 + 3);
  });

  it('gives up after 4 attempts with UNAVAILABLE; does not retry a 403', async () => {
    proxy.clear();
    proxy.fail({ match: isMedia(annPath), times: 100, fault: gcsFault(503, 'backendError', 'Backend Error') });
    const e = await ingestError(flaky, { annotationPath: ANN, imageDir: IMG });
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/after 4 attempts.*503/);
    expect(proxy.seen.filter(isMedia(annPath)).length).toBe(4);

    proxy.clear();
    proxy.fail({ match: isMeta(annPath), times: 100, fault: gcsFault(403, 'forbidden', 'caller does not have storage.objects.get access') });
    const f = await ingestError(flaky, { annotationPath: ANN, imageDir: IMG });
    expect(f.code).toBe('FORBIDDEN');
    expect(proxy.seen.filter(isMeta(annPath)).length).toBe(1);
  });
});

describe('the CLI, configured by the environment', () => {
  it('ingests from gs:// with STORAGE_EMULATOR_HOST in process.env and no credentials', async () => {
    const dir = tempDir();
    try {
      const bin = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
      const { stdout } = await promisify(execFile)(process.execPath, [bin, 'ingest', ANN, IMG, '--json'], {
        cwd: dir,
        env: {
          ...process.env, STORAGE_EMULATOR_HOST: gcs.url, GOOGLE_APPLICATION_CREDENTIALS: '',
          DATAVISOR_DATA_ROOTS: 'gs://datasets/demo', DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'),
          DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'), DATAVISOR_PLUGIN_DIR: path.join(dir, 'none'), DATAVISOR_THUMBNAILS_ON_INGEST: '3',
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
