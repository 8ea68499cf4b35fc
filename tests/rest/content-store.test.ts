import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ingest, SLOW, startTestServer, type IngestEventJson, type TestServer } from './helpers.js';

/**
 * An image folder of symlinks into a content store elsewhere under the data roots (DVC, git-annex),
 * ingested with thumbnails on. A link into the roots is a normal image; a file name or a link that
 * leads outside is that one sample's problem: a warning at ingest and 403 for its image, never a
 * failed dataset.
 */

let t: TestServer;
let events: IngestEventJson[];
let datasetId: string;
let jpeg: Buffer;
const ids: Record<string, number> = {};

beforeAll(async () => {
  t = await startTestServer({ thumbnailsOnIngest: 500 });
  const project = path.join(t.data, 'project');
  const store = path.join(t.data, 'cache', 'md5', 'ab');
  const images = path.join(project, 'images');
  const outside = path.join(t.tmp, 'outside'); // t.tmp is not a data root; t.data is
  await Promise.all([fs.mkdir(store, { recursive: true }), fs.mkdir(images, { recursive: true }), fs.mkdir(outside)]);
  jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#3060a0' } }).jpeg().toBuffer();
  await Promise.all([
    fs.writeFile(path.join(store, 'cdef0123'), jpeg),
    fs.writeFile(path.join(images, 'plain.jpg'), jpeg),
    fs.writeFile(path.join(project, 'up.jpg'), jpeg),
    fs.writeFile(path.join(outside, 'secret.jpg'), jpeg),
  ]);
  await Promise.all([
    // As DVC writes its links: relative, into the cache under the project.
    fs.symlink('../../cache/md5/ab/cdef0123', path.join(images, 'stored.jpg')),
    fs.symlink(path.join(outside, 'secret.jpg'), path.join(images, 'escape.jpg')),
    // git-annex without `get`: the content is not there.
    fs.symlink('../../cache/md5/ab/not-fetched', path.join(images, 'dangling.jpg')),
  ]);
  const names = { stored: 'stored.jpg', plain: 'plain.jpg', escape: 'escape.jpg', up: '../up.jpg', passwd: '/etc/passwd', dangling: 'dangling.jpg' };
  const coco = {
    images: Object.values(names).map((file_name, i) => ({ id: i + 1, file_name, width: 320, height: 240 })),
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0 }],
    categories: [{ id: 1, name: 'thing' }],
  };
  Object.keys(names).forEach((k, i) => (ids[k] = i + 1));
  await fs.writeFile(path.join(project, 'coco.json'), JSON.stringify(coco));
  ({ events } = await ingest(t.base, { annotation_path: path.join(project, 'coco.json'), image_dir: images }));
  datasetId = events.at(-1)!.dataset_id!;
}, SLOW);

afterAll(async () => {
  await t?.close();
});

const image = (key: string, size: string) => fetch(`${t.base}/images/${datasetId}/${ids[key]}?size=${size}`);

describe('an image folder of symlinks into a content store', { timeout: SLOW }, () => {
  test('ingests with thumbnails on, made for the images it may read', async () => {
    const last = events.at(-1)!;
    expect(last.stage, last.message).toBe('complete');
    expect(last.image_count).toBe(6);
    expect(events.filter((e) => e.stage === 'thumbnails').at(-1)).toMatchObject({ current: 2, total: 2 });
  });

  test('a file name or a link leading outside is a warning naming the samples; a dangling link is a missing file', () => {
    const warnings = Object.fromEntries(events.at(-1)!.warnings!.map((w) => [w.code, w]));
    expect(warnings.image_files_refused).toMatchObject({ count: 3, examples: ['escape.jpg', '../up.jpg', '/etc/passwd'] });
    expect(warnings.image_files_missing).toMatchObject({ count: 1, examples: ['dangling.jpg'] });
  });

  test('a link into the data roots is served like any image', async () => {
    for (const key of ['stored', 'plain']) {
      const thumb = await image(key, 'medium');
      expect(thumb.status).toBe(200);
      expect((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width).toBe(256);
      const original = await image(key, 'original');
      expect(original.status).toBe(200);
      expect(Buffer.from(await original.arrayBuffer()).equals(jpeg)).toBe(true);
    }
  });

  test.each(['escape', 'up', 'passwd'])('%s: 403 for every size', async (key) => {
    for (const size of ['small', 'medium', 'original']) {
      const res = await image(key, size);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
  });

  test('the samples say which have no file the server may read', async () => {
    const missing = Object.fromEntries(await Promise.all(Object.entries(ids).map(async ([k, id]) => [k, (await t.dv.samples.get(datasetId, id)).fileMissing])));
    expect(missing).toEqual({ stored: false, plain: false, escape: true, up: true, passwd: true, dangling: true });
  });
});
