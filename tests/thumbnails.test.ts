import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ByteLru } from '../src/services/common/byte-lru.js';
import { DataVisorError } from '../src/services/errors.js';
import { Semaphore } from '../src/services/common/semaphore.js';
import {
  THUMBNAIL_WIDTHS,
  ThumbnailService,
  type ThumbnailRequest,
  type ThumbnailSize,
} from '../src/services/images/thumbnails.js';

let images: string;
let photo: Buffer; // 640×480
let root: string;
let cacheDir: string;

const img = (name: string) => path.join(images, name);

beforeAll(async () => {
  images = await mkdtemp(path.join(os.tmpdir(), 'datavisor-thumb-images-'));
  // Seeded noise, so the JPEG has real scan data to truncate or corrupt, and is the same every run.
  let seed = 42;
  const pixels = Buffer.alloc(640 * 480 * 3, 0).map(() => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  photo = await sharp(pixels, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  // Mid-scan, a marker (RST3, in a file without restart intervals) where entropy data should be.
  let mid = photo.length >> 1;
  while (photo[mid - 1] === 0xff) mid++;
  const corrupt = Buffer.concat([photo.subarray(0, mid), Buffer.from([0xff, 0xd3]), photo.subarray(mid)]);
  await Promise.all([
    writeFile(img('photo.jpg'), photo),
    writeFile(
      img('tiny.jpg'),
      await sharp({ create: { width: 100, height: 80, channels: 3, background: '#3366cc' } }).jpeg().toBuffer(),
    ),
    // Stored 640×480 but tagged "rotate 90° clockwise", so it displays 480×640.
    writeFile(img('rotated.jpg'), await sharp(photo).withMetadata({ orientation: 6 }).jpeg().toBuffer()),
    writeFile(img('truncated.jpg'), photo.subarray(0, photo.length >> 1)),
    writeFile(img('corrupt.jpg'), corrupt),
    writeFile(img('not-an-image.jpg'), 'this is a text file, not a JPEG\n'),
    writeFile(img('bomb.png'), await bombPng(20000, 20000)),
  ]);
});

afterAll(async () => {
  await rm(images, { recursive: true, force: true });
});

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'datavisor-thumb-cache-'));
  cacheDir = path.join(root, 'cache');
});

/** Every service a test made: cache writes finish after get() answers, so afterEach waits for them. */
const services: ThumbnailService[] = [];
function makeService(opts: ConstructorParameters<typeof ThumbnailService>[0]): ThumbnailService {
  const s = new ThumbnailService(opts);
  services.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.flush()));
  // Whatever a test did, the temp+rename protocol must leave no temp or trash behind.
  const leftovers = (await listFiles(root)).filter((f) => f.endsWith('.tmp') || f.includes('.trash-'));
  await rm(root, { recursive: true, force: true });
  expect(leftovers).toEqual([]);
});

function request(sampleKey: string, file: string, size: ThumbnailSize = 'medium', datasetId = 'datasetoneaaaaaa'): ThumbnailRequest {
  return { datasetId, sampleKey, size, loadSource: async () => img(file) };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataVisorError);
  return (e as DataVisorError).code;
}

async function errorOf(p: Promise<unknown>): Promise<DataVisorError> {
  const e = await p.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataVisorError);
  return e as DataVisorError;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('ThumbnailService output', () => {
  it.each(Object.entries(THUMBNAIL_WIDTHS))('makes a %s WebP %i px wide, keeping the aspect ratio', async (size, width) => {
    const service = makeService({ cacheDir });
    const thumb = await service.get(request('1', 'photo.jpg', size as ThumbnailSize));
    const meta = await sharp(thumb.body).metadata();
    expect(meta.format).toBe('webp');
    expect([meta.width, meta.height]).toEqual([width, (width * 3) / 4]);
    expect([thumb.width, thumb.height]).toEqual([width, (width * 3) / 4]);
    expect(thumb.contentType).toBe('image/webp');
    expect(thumb.etag).toBe(`"${createHash('sha256').update(thumb.body).digest('hex').slice(0, 16)}"`);
  });

  it('never upscales a small image', async () => {
    const service = makeService({ cacheDir });
    for (const size of ['small', 'medium', 'large'] as const) {
      const meta = await sharp((await service.get(request('tiny', 'tiny.jpg', size))).body).metadata();
      expect([meta.width, meta.height]).toEqual([100, 80]);
    }
  });

  it('applies the EXIF orientation before resizing', async () => {
    const service = makeService({ cacheDir });
    const medium = await service.get(request('r', 'rotated.jpg', 'medium'));
    expect([medium.width, medium.height]).toEqual([256, 341]);
    const meta = await sharp(medium.body).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([256, 341, undefined]);
    // Upright it is only 480 wide, so "large" (512) must not enlarge it.
    const large = await service.get(request('r', 'rotated.jpg', 'large'));
    expect([large.width, large.height]).toEqual([480, 640]);
  });

  it('accepts the source as bytes, as bucket storage passes it', async () => {
    const service = makeService({ cacheDir });
    const thumb = await service.get({ datasetId: 'datasetoneaaaaaa', sampleKey: 'b', size: 'small', loadSource: async () => photo });
    expect([thumb.width, thumb.height]).toEqual([128, 96]);
  });
});

describe('ThumbnailService caching', () => {
  it('serves a repeat request from memory with the same bytes and ETag', async () => {
    const service = makeService({ cacheDir });
    const first = await service.get(request('1', 'photo.jpg'));
    const second = await service.get({ ...request('1', 'photo.jpg'), loadSource: () => expect.fail('not loaded again') });
    expect(second.etag).toBe(first.etag);
    expect(second.body.equals(first.body)).toBe(true);
    expect(service.stats).toEqual({ generated: 1, diskHits: 0, memoryHits: 1 });
  });

  it('decodes once when the same thumbnail is requested concurrently', async () => {
    const service = makeService({ cacheDir });
    let loads = 0;
    const req: ThumbnailRequest = { ...request('1', 'photo.jpg'), loadSource: async () => (loads++, img('photo.jpg')) };
    const thumbs = await Promise.all(Array.from({ length: 8 }, () => service.get(req)));
    expect(loads).toBe(1);
    expect(service.stats.generated).toBe(1);
    expect(new Set(thumbs.map((t) => t.etag)).size).toBe(1);
  });

  it('lays files out as <datasetId>/<size>/<hh>/<hash>.webp', async () => {
    const service = makeService({ cacheDir });
    await service.get(request('1', 'photo.jpg', 'small'));
    await service.get(request('1', 'photo.jpg', 'large', 'datasettwoaaaaaa'));
    await service.flush();
    const files = (await listFiles(cacheDir)).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/^datasetoneaaaaaa\/small\/([0-9a-f]{2})\/\1[0-9a-f]{62}\.webp$/);
    expect(files[1]).toMatch(/^datasettwoaaaaaa\/large\/([0-9a-f]{2})\/\1[0-9a-f]{62}\.webp$/);
  });

  it('a new service on the same cache dir reads the thumbnail from disk', async () => {
    const writer = makeService({ cacheDir });
    const first = await writer.get(request('1', 'photo.jpg'));
    await writer.flush();
    const service = makeService({ cacheDir });
    const req = { ...request('1', 'photo.jpg'), loadSource: () => expect.fail('must come from disk') };
    const fromDisk = await service.get(req);
    expect(fromDisk.etag).toBe(first.etag);
    expect(fromDisk.body.equals(first.body)).toBe(true);
    expect([fromDisk.width, fromDisk.height]).toEqual([256, 192]);
    await service.get(req);
    expect(service.stats).toEqual({ generated: 0, diskHits: 1, memoryHits: 1 });
  });

  it('keeps the memory cache within its byte budget, falling back to disk', async () => {
    const probe = await makeService({ cacheDir: path.join(root, 'probe') }).get(request('1', 'photo.jpg'));
    // Room for one thumbnail of this size, not two.
    const service = makeService({ cacheDir, memoryCacheBytes: Math.floor(probe.body.length * 1.5) });
    await service.get(request('1', 'photo.jpg'));
    await service.get(request('2', 'photo.jpg'));
    await service.get(request('2', 'photo.jpg'));
    await service.flush();
    await service.get(request('1', 'photo.jpg'));
    expect(service.stats).toEqual({ generated: 2, diskHits: 1, memoryHits: 1 });
  });

  it('writes again after its cache folder was deleted behind its back', async () => {
    // No memory cache: every get() after the first goes to disk, and writes when it finds nothing.
    const service = makeService({ cacheDir, memoryCacheBytes: 0 });
    await service.get(request('1', 'photo.jpg'));
    await service.flush();
    expect(await listFiles(cacheDir)).toHaveLength(1);
    await rm(cacheDir, { recursive: true, force: true });
    await service.get(request('1', 'photo.jpg'));
    await service.flush();
    expect(await listFiles(cacheDir)).toHaveLength(1);
    expect(service.stats.generated).toBe(2);
  });

  it('never reads a leftover temp file as a thumbnail', async () => {
    const service = makeService({ cacheDir });
    await service.get(request('1', 'photo.jpg'));
    await service.flush();
    const [file] = await listFiles(cacheDir);
    const final = path.join(cacheDir, file!);
    await rm(final);
    // What a crash between write and rename leaves: a complete, valid, but different WebP.
    const impostor = await sharp(await readFile(img('tiny.jpg'))).webp().toBuffer();
    const temp = `${final}.4242-0123456789ab.tmp`;
    await writeFile(temp, impostor);
    const thumb = await makeService({ cacheDir }).get(request('1', 'photo.jpg'));
    expect([thumb.width, thumb.height]).toEqual([256, 192]);
    await rm(temp);
  });

  it('regenerates a cache file that is not a whole WebP', async () => {
    const writer = makeService({ cacheDir });
    const good = await writer.get(request('1', 'photo.jpg'));
    await writer.flush();
    const [file] = await listFiles(cacheDir);
    await writeFile(path.join(cacheDir, file!), good.body.subarray(0, good.body.length >> 1));
    const service = makeService({ cacheDir });
    const thumb = await service.get(request('1', 'photo.jpg'));
    expect(thumb.body.equals(good.body)).toBe(true);
    expect(service.stats.generated).toBe(1);
    await service.flush();
    expect((await readFile(path.join(cacheDir, file!))).equals(good.body)).toBe(true);
  });
});

describe('ThumbnailService failures', () => {
  it.each([
    ['truncated.jpg', /premature end of JPEG image/],
    ['corrupt.jpg', /Corrupt JPEG data/],
    ['not-an-image.jpg', /unsupported image format/],
  ])('refuses %s as UNPROCESSABLE_IMAGE naming the cause, then keeps working', async (file, cause) => {
    const service = makeService({ cacheDir });
    const e = await errorOf(service.get(request('bad', file)));
    expect(e.code).toBe('UNPROCESSABLE_IMAGE');
    expect(e.message).toMatch(cause);
    expect(e.message).toContain('sample "bad" of dataset "datasetoneaaaaaa"');
    expect(e.message).not.toContain(images);
    expect((await service.get(request('good', 'photo.jpg'))).width).toBe(256);
    await service.flush();
    expect(await listFiles(cacheDir)).toHaveLength(1);
  });

  it('refuses empty bytes', async () => {
    const service = makeService({ cacheDir });
    const req = { ...request('e', 'photo.jpg'), loadSource: async () => Buffer.alloc(0) };
    expect(await codeOf(service.get(req))).toBe('UNPROCESSABLE_IMAGE');
  });

  it('refuses a decompression bomb under the default pixel limit without decoding it', async () => {
    expect((await stat(img('bomb.png'))).size).toBeLessThan(1_000_000);
    const service = makeService({ cacheDir });
    const e = await errorOf(service.get(request('bomb', 'bomb.png')));
    expect(e.code).toBe('UNPROCESSABLE_IMAGE');
    expect(e.message).toContain('20000×20000');
    expect(e.message).toContain('100000000 pixels');
    expect((await service.get(request('good', 'photo.jpg'))).width).toBe(256);
  });

  it('honours a lower maxInputPixels', async () => {
    const service = makeService({ cacheDir, maxInputPixels: 300_000 });
    const e = await errorOf(service.get(request('1', 'photo.jpg')));
    expect(e.code).toBe('UNPROCESSABLE_IMAGE');
    expect(e.message).toContain('640×480 (307200 pixels)');
    expect((await service.get(request('tiny', 'tiny.jpg'))).width).toBe(100);
  });

  it('reports a missing source file as FILE_NOT_FOUND, without the server path', async () => {
    const service = makeService({ cacheDir });
    const e = await errorOf(service.get(request('m', 'missing.jpg')));
    expect(e.code).toBe('FILE_NOT_FOUND');
    expect(e.message).toContain('"missing.jpg"');
    expect(e.message).not.toContain(images);
    // A loader that reads the bytes itself fails with ENOENT before sharp runs.
    const reading = { ...request('m2', 'missing.jpg'), loadSource: () => readFile(img('missing.jpg')) };
    expect(await codeOf(service.get(reading))).toBe('FILE_NOT_FOUND');
  });

  it('does not cache failures: a fixed source is thumbnailed on the next request', async () => {
    const service = makeService({ cacheDir });
    let source: Buffer = Buffer.from('not yet');
    const req = { ...request('late', 'photo.jpg'), loadSource: async () => source };
    expect(await codeOf(service.get(req))).toBe('UNPROCESSABLE_IMAGE');
    source = photo;
    expect((await service.get(req)).width).toBe(256);
  });

  it('rethrows loader failures that are not the image’s fault', async () => {
    const service = makeService({ cacheDir });
    const outage = new Error('bucket unavailable');
    const req = { ...request('x', 'photo.jpg'), loadSource: () => Promise.reject(outage) };
    await expect(service.get(req)).rejects.toBe(outage);
    await expect(service.warm(req)).rejects.toBe(outage);
  });
});

describe('ThumbnailService cache writes', () => {
  it('answers from memory when the cache cannot be written, and reports the failed write', async () => {
    // A file where the cache folder should be: every write fails.
    const blocked = path.join(root, 'blocked');
    await writeFile(blocked, 'not a folder');
    const failures: unknown[] = [];
    const service = makeService({ cacheDir: blocked, onWriteError: (err) => failures.push(err) });
    const thumb = await service.get(request('1', 'photo.jpg'));
    expect(thumb.width).toBe(256);
    await service.flush();
    expect(failures).toHaveLength(1);
    expect((await service.get(request('1', 'photo.jpg'))).etag).toBe(thumb.etag);
    expect(service.stats).toEqual({ generated: 1, diskHits: 0, memoryHits: 1 });
    await rm(blocked);
  });

  it('survives an onWriteError that throws (no unhandled rejection: vitest would fail the run)', async () => {
    const blocked = path.join(root, 'blocked-throwing');
    await writeFile(blocked, 'not a folder');
    let reported = 0;
    const service = makeService({
      cacheDir: blocked,
      onWriteError: () => {
        reported++;
        throw new Error('the reporter fails too');
      },
    });
    expect((await service.get(request('1', 'photo.jpg'))).width).toBe(256);
    await service.flush();
    expect(reported).toBe(1);
    await rm(blocked);
  });
});

describe('ThumbnailService.warm', () => {
  it('resolves true when made or cached and false for a bad or refused image, never throwing for it', async () => {
    const service = makeService({ cacheDir });
    expect(await service.warm(request('1', 'photo.jpg'))).toBe(true);
    expect(await service.warm(request('1', 'photo.jpg'))).toBe(true);
    await service.flush();
    expect(await makeService({ cacheDir }).warm(request('1', 'photo.jpg'))).toBe(true);
    expect(await service.warm(request('2', 'truncated.jpg'))).toBe(false);
    expect(await service.warm(request('3', 'missing.jpg'))).toBe(false);
    expect(await service.warm(request('4', 'bomb.png'))).toBe(false);
    // A file name or link the path rules refuse is that sample's problem, not the ingest's.
    const refused = new DataVisorError('FORBIDDEN', 'file_name "link.jpg" is a link that leads outside the allowed data roots');
    expect(await service.warm({ ...request('5', 'photo.jpg'), loadSource: () => Promise.reject(refused) })).toBe(false);
    expect(service.stats.generated).toBe(1);
    await service.get(request('1', 'photo.jpg'));
    expect(service.stats.generated).toBe(1);
  });
});

describe('ThumbnailService.removeDataset', () => {
  it('deletes the dataset folder and its memory entries, leaving other datasets', async () => {
    const service = makeService({ cacheDir });
    await service.get(request('1', 'photo.jpg', 'small', 'datasetoneaaaaaa'));
    await service.get(request('1', 'photo.jpg', 'large', 'datasetoneaaaaaa'));
    await service.get(request('1', 'photo.jpg', 'small', 'datasettwoaaaaaa'));
    await service.removeDataset('datasetoneaaaaaa');
    await service.flush();
    expect(await exists(path.join(cacheDir, 'datasetoneaaaaaa'))).toBe(false);
    expect(await listFiles(cacheDir)).toHaveLength(1);
    await service.get(request('1', 'photo.jpg', 'small', 'datasettwoaaaaaa'));
    expect(service.stats.memoryHits).toBe(1);
    await service.get(request('1', 'photo.jpg', 'small', 'datasetoneaaaaaa'));
    expect(service.stats.generated).toBe(4);
    await service.removeDataset('nevercachedaaaaa');
  });

  it('lets a request already running finish without re-caching the removed dataset', async () => {
    const service = makeService({ cacheDir });
    await service.get(request('0', 'photo.jpg'));
    const called = deferred();
    const release = deferred();
    const pending = service.get({
      ...request('1', 'photo.jpg'),
      loadSource: async () => {
        called.resolve();
        await release.promise;
        return img('photo.jpg');
      },
    });
    await called.promise;
    await service.removeDataset('datasetoneaaaaaa');
    release.resolve();
    expect((await pending).width).toBe(256);
    expect(await exists(path.join(cacheDir, 'datasetoneaaaaaa'))).toBe(false);
    await service.get(request('1', 'photo.jpg'));
    expect(service.stats.generated).toBe(3);
    await service.flush();
    expect(await listFiles(cacheDir)).toHaveLength(1);
  });

  it('does not break requests that write while the folder is being removed', async () => {
    const service = makeService({ cacheDir });
    const keys = Array.from({ length: 24 }, (_, i) => String(i));
    const gets = keys.map((k) => service.get(request(k, 'tiny.jpg', 'small')));
    await gets[3];
    await service.removeDataset('datasetoneaaaaaa');
    const results = await Promise.allSettled(gets);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.width : r.reason))).toEqual(Array(24).fill(100));
    // All 24 began before the removal, so none may have cached anything that survived it.
    await Promise.all(keys.map((k) => service.get(request(k, 'tiny.jpg', 'small'))));
    expect(service.stats).toEqual({ generated: 48, diskHits: 0, memoryHits: 0 });
    await service.flush();
    expect(await listFiles(cacheDir)).toHaveLength(24);
  });
});

describe('ThumbnailService input validation', () => {
  it.each(['../x', '..', '.', '', 'a/b', 'a\\b', '/etc', 'x'.repeat(129), 'é'])(
    'refuses the dataset id %j before touching the disk',
    async (datasetId) => {
      const service = makeService({ cacheDir });
      expect(await codeOf(service.get(request('1', 'photo.jpg', 'small', datasetId)))).toBe('BAD_USER_INPUT');
      expect(await codeOf(service.warm(request('1', 'photo.jpg', 'small', datasetId)))).toBe('BAD_USER_INPUT');
      expect(await codeOf(service.removeDataset(datasetId))).toBe('BAD_USER_INPUT');
      expect(await readdir(root)).toEqual([]);
    },
  );

  it.each(['original', '../../x', 'toString'])('refuses the size %j', async (size) => {
    const service = makeService({ cacheDir });
    const req = { ...request('1', 'photo.jpg'), size: size as ThumbnailSize };
    expect(await codeOf(service.get(req))).toBe('BAD_USER_INPUT');
    expect(await readdir(root)).toEqual([]);
  });
});

describe('decode concurrency', () => {
  it('Semaphore runs at most `limit` tasks, in arrival order', async () => {
    const slots = new Semaphore(2);
    const gates = Array.from({ length: 5 }, () => deferred());
    const started: number[] = [];
    const runs = gates.map((g, i) => slots.run(async () => (started.push(i), g.promise)));
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    gates[1]!.resolve();
    await runs[1];
    expect(started).toEqual([0, 1, 2]);
    gates[0]!.resolve();
    await runs[0];
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates) g.resolve();
    await Promise.all(runs);
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('holds at most twice `concurrency` sources at once (loading, or waiting for a decode slot)', async () => {
    const service = makeService({ cacheDir, concurrency: 2 });
    const releases = Array.from({ length: 6 }, () => deferred());
    const calls: number[] = [];
    let released = 0;
    let overlaps = 0;
    const fourCalled = deferred();
    const gets = releases.map((r, i) =>
      service.get({
        ...request(String(i), 'tiny.jpg'),
        loadSource: async () => {
          // A load may begin only when an earlier one has been let go and its slot freed.
          if (calls.length - released >= 4) overlaps++;
          calls.push(i);
          if (calls.length === 4) fourCalled.resolve();
          await r.promise;
          return img('tiny.jpg');
        },
      }),
    );
    await fourCalled.promise;
    // Give the other two every chance to pass their disk lookups and reach the semaphore.
    for (let i = 0; i < 3; i++) {
      await Promise.all(releases.map((_, k) => stat(path.join(root, `nothing-${k}`)).catch(() => undefined)));
      await new Promise((r) => setImmediate(r));
    }
    expect(calls).toHaveLength(4);
    for (const r of releases) {
      released++;
      r.resolve();
    }
    // allSettled, so no get is still writing into the cache dir when the test's cleanup runs.
    const results = await Promise.allSettled(gets);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('fulfilled'));
    expect(calls).toHaveLength(6);
    expect(overlaps).toBe(0);
  });

  it('writes the thumbnails of a burst to disk (after the decodes, or at flush())', async () => {
    const service = makeService({ cacheDir, concurrency: 2 });
    const made = await Promise.all(Array.from({ length: 8 }, (_, i) => service.get(request(`burst-${i}`, 'photo.jpg'))));
    expect(new Set(made.map((t) => t.etag)).size).toBe(1);
    await service.flush();
    expect((await listFiles(cacheDir)).filter((f) => f.endsWith('.webp'))).toHaveLength(8);
    // A new service finds every one of them on disk.
    const reader = makeService({ cacheDir });
    for (let i = 0; i < 8; i++) await reader.get(request(`burst-${i}`, 'photo.jpg'));
    expect(reader.stats).toMatchObject({ diskHits: 8, generated: 0 });
  });

  it('holds a burst’s writes while decodes follow each other, and writes them all once idle', async () => {
    const service = makeService({ cacheDir, concurrency: 1, writeIdleMs: 1500 });
    const webps = async () => (await listFiles(cacheDir)).filter((f) => f.endsWith('.webp')).length;
    // One request after the other: between two of them no decode runs for a moment, which is
    // not idleness (writing then would create files in the middle of the burst).
    for (let i = 0; i < 6; i++) await service.get(request(`idle-${i}`, 'photo.jpg'));
    expect(await webps()).toBe(0);
    const deadline = Date.now() + 10_000;
    while ((await webps()) < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await webps()).toBe(6);
  });

  it('writes during a burst that never pauses once its oldest write has waited 2 s', async () => {
    // Idleness never comes within the test: every file on disk was written because it waited too long.
    const service = makeService({ cacheDir, concurrency: 1, writeIdleMs: 60_000 });
    const webps = async () => (await listFiles(cacheDir)).filter((f) => f.endsWith('.webp')).length;
    const started = Date.now();
    let made = 0;
    while (Date.now() - started < 2600) await service.get(request(`stream-${made++}`, 'photo.jpg'));
    await new Promise((r) => setTimeout(r, 200));
    const written = await webps();
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(made);
  });

  it('writes nothing for a dataset removed while its burst is still decoding', async () => {
    const service = makeService({ cacheDir, concurrency: 2 });
    const gets = Array.from({ length: 6 }, (_, i) => service.get(request(`burst-${i}`, 'photo.jpg')));
    // Once one is made the others are still decoding, so its write waits behind them.
    await Promise.race(gets);
    await service.removeDataset('datasetoneaaaaaa');
    await Promise.all(gets);
    await service.flush();
    expect(await exists(path.join(cacheDir, 'datasetoneaaaaaa'))).toBe(false);
  });
});

describe('ByteLru', () => {
  it('evicts the least recently used entries once over its byte budget', () => {
    const lru = new ByteLru<Buffer>(10, (b) => b.length);
    lru.set('a', Buffer.alloc(4));
    lru.set('b', Buffer.alloc(4));
    lru.get('a');
    lru.set('c', Buffer.alloc(4));
    expect([lru.get('a') !== undefined, lru.get('b') !== undefined, lru.get('c') !== undefined]).toEqual([
      true,
      false,
      true,
    ]);
    expect(lru.bytes).toBe(8);
    lru.set('huge', Buffer.alloc(11));
    expect(lru.get('huge')).toBeUndefined();
    lru.deleteByPrefix('a');
    expect(lru.bytes).toBe(4);
  });
});

/** A valid greyscale PNG of width×height black pixels; zeros deflate ~1000:1, so it is tiny on disk. */
async function bombPng(width: number, height: number): Promise<Buffer> {
  const rows = Buffer.alloc((width + 1) * 500); // filter byte 0 + pixels, 500 rows at a time
  const deflate = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((r) => deflate.on('end', r));
  for (let y = 0; y < height; y += 500) {
    if (!deflate.write(rows)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await ended;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (grey), compression, filter and interlace all 0
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(out)), pngChunk('IEND', Buffer.alloc(0))]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
