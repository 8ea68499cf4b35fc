import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { bombPng, expectHealthy, ingestOk, SLOW, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
let datasetId: string;
let secret: Buffer;
let photo: Buffer;
const ids: Record<string, number> = {};

/**
 * A dataset whose annotation file names images it must never serve (paths leading out of its
 * folder) and images that cannot be decoded, built in a temp folder inside the data roots.
 */
beforeAll(async () => {
  t = await startTestServer();
  const root = path.join(t.data, 'evil');
  const images = path.join(root, 'images');
  await fs.mkdir(path.join(images, 'sub'), { recursive: true });
  // Seeded noise, so the JPEG has real scan data to truncate or corrupt.
  let seed = 7;
  const pixels = Buffer.alloc(640 * 480 * 3).map(() => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  photo = await sharp(pixels, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  let mid = photo.length >> 1;
  while (photo[mid - 1] === 0xff) mid++;
  secret = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).jpeg().toBuffer();
  await Promise.all([
    fs.writeFile(path.join(images, 'ok.jpg'), photo),
    fs.writeFile(path.join(root, 'secret.jpg'), secret),
    // A marker (RST3, in a file without restart intervals) in the middle of the scan data.
    fs.writeFile(path.join(images, 'corrupt.jpg'), Buffer.concat([photo.subarray(0, mid), Buffer.from([0xff, 0xd3]), photo.subarray(mid)])),
    fs.writeFile(path.join(images, 'truncated.jpg'), photo.subarray(0, photo.length >> 1)),
    fs.writeFile(path.join(images, 'not-an-image.jpg'), 'this is a text file, not a JPEG\n'),
    bombPng(20000, 20000).then((b) => fs.writeFile(path.join(images, 'bomb.png'), b)),
    // Out of the data roots (t.tmp is not one): a link into them would be followed (content-store.test.ts).
    fs.writeFile(path.join(t.tmp, 'secret.jpg'), secret).then(() => fs.symlink(path.join(t.tmp, 'secret.jpg'), path.join(images, 'link.jpg'))),
  ]);
  const names = {
    ok: 'ok.jpg',
    dotdot: '../secret.jpg',
    absolute: path.join(root, 'secret.jpg'),
    sneaky: 'sub/../../secret.jpg',
    symlink: 'link.jpg',
    nul: 'ok.jpg\u0000.png',
    corrupt: 'corrupt.jpg',
    truncated: 'truncated.jpg',
    bomb: 'bomb.png',
    text: 'not-an-image.jpg',
    missing: 'missing.jpg',
  };
  const coco = {
    images: Object.values(names).map((file_name, i) => ({ id: 100 + i, file_name, width: 640, height: 480 })),
    annotations: [],
    categories: [{ id: 1, name: 'thing', supercategory: 'thing' }],
  };
  Object.keys(names).forEach((k, i) => (ids[k] = 100 + i));
  await fs.writeFile(path.join(root, 'coco.json'), JSON.stringify(coco));
  datasetId = (await ingestOk(t.base, { annotation_path: path.join(root, 'coco.json'), image_dir: images })).dataset_id!;
}, SLOW);

afterAll(async () => {
  await t?.close();
});

afterEach(async () => {
  await expectHealthy(t.base);
});

const image = (key: string, size: string) => fetch(`${t.base}/images/${datasetId}/${ids[key]}?size=${size}`);

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = Buffer.from(await res.arrayBuffer());
  expect(body.includes(secret.subarray(0, 64))).toBe(false);
  const json = JSON.parse(body.toString('utf8')) as { error: { code: string; message: string } };
  expect(json.error.code).toBe(code);
  return json.error.message;
}

describe('file names that lead out of the image folder are refused', { timeout: SLOW }, () => {
  test('a well-behaved image of the same dataset is served', async () => {
    const res = await image('ok', 'small');
    expect(res.status).toBe(200);
    expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(128);
  });

  test.each(['dotdot', 'absolute', 'sneaky', 'symlink', 'nul'])('%s: 403 for thumbnails and originals, never the file', async (key) => {
    for (const size of ['small', 'medium', 'large', 'original']) {
      const message = await expectError(await image(key, size), 403, 'FORBIDDEN');
      // The message names the file_name from the annotation file, never the server's image folder.
      expect(message).toContain('file_name');
      expect(message).not.toContain(path.join(t.data, 'evil', 'images'));
    }
  });
});

describe('images that cannot be decoded answer 422 and the server goes on', { timeout: SLOW }, () => {
  test.each(['corrupt', 'truncated', 'bomb', 'text'])('%s', async (key) => {
    for (const size of ['small', 'medium']) {
      const message = await expectError(await image(key, size), 422, 'UNPROCESSABLE_IMAGE');
      expect(message).toContain(String(ids[key]));
      expect(message).not.toContain(t.tmp);
    }
    // Failures are not cached: asking again decodes again and fails the same way.
    await expectError(await image(key, 'medium'), 422, 'UNPROCESSABLE_IMAGE');
  });

  test('the bomb is refused from its header, so it costs no memory', async () => {
    const message = await expectError(await image('bomb', 'large'), 422, 'UNPROCESSABLE_IMAGE');
    expect(message).toMatch(/20000×20000/);
  });

  test('originals of undecodable images are still served as the files they are', async () => {
    const res = await image('truncated', 'original');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await res.arrayBuffer()).equals(photo.subarray(0, photo.length >> 1))).toBe(true);
    const bomb = await image('bomb', 'original');
    expect(bomb.headers.get('content-type')).toBe('image/png');
    await bomb.arrayBuffer();
  });

  test('a listed image whose file is missing: 404 FILE_NOT_FOUND', async () => {
    await expectError(await image('missing', 'medium'), 404, 'FILE_NOT_FOUND');
    await expectError(await image('missing', 'original'), 404, 'FILE_NOT_FOUND');
  });
});

describe('thumbnail caching through the route', { timeout: SLOW }, () => {
  test('concurrent requests for a cold thumbnail decode it once and all get the same bytes', async () => {
    const before = t.dv.thumbnails.stats.generated;
    const all = await Promise.all(Array.from({ length: 20 }, () => image('ok', 'large')));
    const bodies = await Promise.all(all.map(async (r) => Buffer.from(await r.arrayBuffer())));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(new Set(all.map((r) => r.headers.get('etag'))).size).toBe(1);
    expect(bodies.every((b) => b.equals(bodies[0]!))).toBe(true);
    expect(t.dv.thumbnails.stats.generated - before).toBe(1);
  });

  test('a memory hit does not touch the database', async () => {
    await (await image('ok', 'medium')).arrayBuffer();
    const queries = t.dv.db.queryCount;
    for (let i = 0; i < 5; i++) expect((await image('ok', 'medium')).status).toBe(200);
    expect(t.dv.db.queryCount).toBe(queries);
  });
});

describe('byte ranges of originals (local files)', () => {
  const get = (headers: Record<string, string>, method = 'GET') => fetch(`${t.base}/images/${datasetId}/${ids.ok}?size=original`, { method, headers });
  const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());

  test('every original says it takes ranges; no Range is the whole file', async () => {
    const res = await get({});
    expect(res.status).toBe(200);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect((await bytes(res)).equals(photo)).toBe(true);
  });

  test.each([
    ['bytes=0-99', 0, 99],
    ['bytes=100-', 100, 'last'],
    ['bytes=-50', 'suffix', 'last'],
    ['bytes=10-999999999', 10, 'last'],
    ['bytes = 7 - 7', 7, 7],
  ] as const)('%s answers 206 with those bytes and Content-Range', async (range, from, to) => {
    const size = photo.length;
    const start = from === 'suffix' ? size - 50 : from;
    const end = to === 'last' ? size - 1 : to;
    const res = await get({ range });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect((await bytes(res)).equals(photo.subarray(start, end + 1))).toBe(true);
  });

  test.each([`bytes=${'SIZE'}-`, 'bytes=-0', `bytes=${'SIZE'}-${'SIZE'}`])('%s (past the end) answers 416 with Content-Range: bytes */size', async (template) => {
    const range = template.replaceAll('SIZE', String(photo.length));
    const res = await get({ range });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${photo.length}`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toEqual({ code: 'BAD_USER_INPUT', message: `Range "${range}" selects no byte of this ${photo.length}-byte file: ask for bytes 0 to ${photo.length - 1}` });
  });

  test.each(['items=0-10', 'bytes=10-5', 'bytes=0-1,5-9', 'bytes=abc', 'bytes=-'])('%s is ignored: 200 with the whole file', async (range) => {
    const res = await get({ range });
    expect(res.status).toBe(200);
    expect((await bytes(res)).equals(photo)).toBe(true);
  });

  test('If-Range: the current ETag lets the range apply; another tag, a weak tag or a date gets the whole file', async () => {
    const etag = (await get({}, 'HEAD')).headers.get('etag')!;
    const same = await get({ range: 'bytes=0-9', 'if-range': etag });
    expect([same.status, (await bytes(same)).length]).toEqual([206, 10]);
    for (const ifRange of ['"0-0"', `W/${etag}`, new Date().toUTCString()]) {
      const other = await get({ range: 'bytes=0-9', 'if-range': ifRange });
      expect(other.status, ifRange).toBe(200);
      expect((await bytes(other)).equals(photo)).toBe(true);
    }
  });

  test('If-None-Match is decided first (304); HEAD ignores Range and describes the whole file', async () => {
    const etag = (await get({}, 'HEAD')).headers.get('etag')!;
    expect((await get({ range: 'bytes=0-9', 'if-none-match': etag })).status).toBe(304);
    const head = await get({ range: 'bytes=0-9' }, 'HEAD');
    expect([head.status, head.headers.get('content-length'), head.headers.get('accept-ranges')]).toEqual([200, String(photo.length), 'bytes']);
  });
});
