import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Annotation, Sample } from '../../dist/services/datasets/samples.js';
import { startServer } from '../../dist/server.js';
import { readerFor } from '../../dist/services/ingest/formats/registry.js';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { ingestAll, openTestEnv, tempDir, traces, type TestEnv } from '../helpers/env.js';

/**
 * YOLO folders written here, with tiny real JPEG and PNG files drawn by sharp. Expected values are
 * worked out by hand from what each test writes (a box `cx cy w h` on a W×H image is
 * `[(cx - w/2)·W, (cy - h/2)·H, w·W, h·H]`).
 */

let env: TestEnv;
beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const drawn = new Map<string, Buffer>();
async function image(file: string, width: number, height: number, opts: { png?: boolean; orientation?: number } = {}): Promise<void> {
  const key = `${width}x${height}-${opts.png ? 'png' : 'jpg'}-${opts.orientation ?? 0}`;
  let bytes = drawn.get(key);
  if (!bytes) {
    let s = sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 } } });
    s = opts.png ? s.png() : s.jpeg();
    if (opts.orientation) s = s.withMetadata({ orientation: opts.orientation });
    drawn.set(key, (bytes = await s.toBuffer()));
  }
  write(file, bytes);
}

function write(file: string, content: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/** A new folder inside the test's data root. */
function folder(name: string): string {
  const dir = path.join(env.dir, name);
  fs.mkdirSync(dir, { recursive: true });
  return fs.realpathSync(dir);
}

async function ingestOk(request: IngestRequest): Promise<IngestEvent & { dataset_id: string }> {
  const events = await ingestAll(env.dv, { format: 'yolo', ...request });
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return last as IngestEvent & { dataset_id: string };
}

async function ingestError(request: IngestRequest): Promise<IngestEvent> {
  const before = await traces(env.dv);
  const events = await ingestAll(env.dv, { format: 'yolo', ...request });
  const last = events.at(-1)!;
  expect(last.stage).toBe('error');
  expect(await traces(env.dv)).toEqual(before);
  return last;
}

async function samplesOf(id: string): Promise<Sample[]> {
  return (await env.dv.samples.page(id, {}, { kind: 'after', afterOrd: null, limit: 200 })).samples;
}

async function annotationsOf(id: string, samples: Sample[]): Promise<Annotation[][]> {
  return env.dv.samples.annotationsOf(id, samples.map((s) => s.ord), { shapes: true });
}

const box = (a: Annotation) => [a.bbox!.x, a.bbox!.y, a.bbox!.w, a.bbox!.h].map((v) => Math.round(v * 1e6) / 1e6);

describe('every warning kind, counted, and what could be read ingested', () => {
  let root: string;
  let done: IngestEvent & { dataset_id: string };

  beforeAll(async () => {
    root = folder('warnings');
    write(path.join(root, 'data.yaml'), 'path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnc: 3\nnames:\n  0: cat\n  1: dog\n');
    await image(path.join(root, 'images/train/a.jpg'), 100, 50);
    write(path.join(root, 'labels/train/a.txt'), '0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n');
    await image(path.join(root, 'images/train/b.png'), 64, 32, { png: true });
    write(path.join(root, 'labels/train/b.txt'), '5 0.5 0.5 0.1 0.1\n0 1.2 0.5 0.1 0.1\n');
    await image(path.join(root, 'images/train/c.jpg'), 20, 20); // no label file: background
    await image(path.join(root, 'images/train/d.jpg'), 20, 20);
    write(path.join(root, 'labels/train/d.txt'), ''); // empty label file: background, no warning
    await image(path.join(root, 'images/train/e.jpg'), 10, 10);
    write(path.join(root, 'labels/train/e.txt'), '0 0.5 0.5 0.2 0.2\n\n1 0.5 0.5\nx 0.1 0.1 0.1 0.1\n0 a b c d\n1 0.5 0.5 0.4 0.4\n\n');
    write(path.join(root, 'images/train/f.jpg'), 'not an image at all');
    write(path.join(root, 'labels/train/f.txt'), '0 0.5 0.5 0.5 0.5\n');
    write(path.join(root, 'labels/train/orphan.txt'), '0 0.5 0.5 0.5 0.5\n');
    write(path.join(root, 'labels/train.cache'), 'Ultralytics cache');
    write(path.join(root, 'images/train/.gitkeep'), '');
    write(path.join(root, 'images/train/notes.md'), '# not an image');
    await image(path.join(root, 'images/val/g.jpg'), 200, 100);
    write(path.join(root, 'labels/val/g.txt'), '1 0.1 0.1 0.9 0.1 0.9 0.9 0.1 0.9\n');
    done = await ingestOk({ annotationPath: path.join(root, 'data.yaml'), storeShapes: true });
  });

  it('reports each kind with its count and first examples', () => {
    const w = Object.fromEntries(done.warnings!.map((x) => [x.code, [x.count, x.examples]]));
    expect(w).toEqual({
      nc_mismatch: [1, ['nc: 3, names: 2']],
      split_folder_missing: [1, ['test: images/test']],
      label_files_without_image: [1, ['labels/train/orphan.txt']],
      image_headers_unreadable: [1, [expect.stringMatching(/^train\/f\.jpg \(.+\)$/)]],
      unknown_class_ids: [1, ['labels/train/b.txt:1 (class 5)']],
      coordinates_outside_unit_range: [1, ['labels/train/b.txt:2']],
      empty_label_lines: [1, ['labels/train/e.txt:2']],
      unreadable_label_lines: [3, ['labels/train/e.txt:3', 'labels/train/e.txt:4', 'labels/train/e.txt:5']],
      // The writer's own checks, on the same rows:
      bbox_outside_image: [1, [4]],
      missing_bbox: [1, [7]],
      images_without_annotations: [2, ['train/c.jpg', 'train/d.jpg']],
      images_without_size: [1, ['train/f.jpg']],
    });
    expect(done.warnings!.find((x) => x.code === 'nc_mismatch')!.message).toContain('`nc` is 3 but `names` has 2');
  });

  it('ingests the samples (no labels.cache, placeholder or non-image) with their sizes and splits', async () => {
    const samples = await samplesOf(done.dataset_id);
    expect(samples.map((s) => [s.id, s.fileName, s.split, s.width, s.height, s.annotationCount, s.fileMissing])).toEqual([
      [0, 'train/a.jpg', 'train', 100, 50, 2, false],
      [1, 'train/b.png', 'train', 64, 32, 2, false],
      [2, 'train/c.jpg', 'train', 20, 20, 0, false],
      [3, 'train/d.jpg', 'train', 20, 20, 0, false],
      [4, 'train/e.jpg', 'train', 10, 10, 2, false],
      [5, 'train/f.jpg', 'train', null, null, 1, false],
      [6, 'val/g.jpg', 'val', 200, 100, 1, false],
    ]);
    const ds = await env.dv.datasets.get(done.dataset_id);
    expect(ds.imageDir).toBe(path.join(root, 'images'));
  });

  it('converts boxes and polygons to pixels and keeps unknown classes under class_<id>', async () => {
    const samples = await samplesOf(done.dataset_id);
    const anns = await annotationsOf(done.dataset_id, samples);
    const rows = anns.flat().map((a) => [a.id, a.sampleId, a.categoryName, a.bbox ? box(a) : null, a.area === null ? null : Math.round(a.area * 1e6) / 1e6, a.segmentationKind]);
    expect(rows).toEqual([
      [1, 0, 'cat', [40, 15, 20, 20], 400, 'none'],
      [2, 0, 'dog', [5, 2.5, 10, 5], 50, 'none'],
      [3, 1, 'class_5', [28.8, 14.4, 6.4, 3.2], 20.48, 'none'],
      [4, 1, 'cat', [73.6, 14.4, 6.4, 3.2], 20.48, 'none'],
      [5, 4, 'cat', [4, 4, 2, 2], 4, 'none'],
      [6, 4, 'dog', [3, 3, 4, 4], 16, 'none'],
      [7, 5, 'cat', null, null, 'none'],
      // A square polygon of 0.8×0.8 on 200×100: box = its extent, area = shoelace.
      [8, 6, 'dog', [20, 10, 160, 80], 12800, 'polygon'],
    ]);
    const poly = anns.flat().at(-1)!;
    expect([poly.polygonCount, poly.pointCount, poly.segmentation]).toEqual([1, 4, [[20, 10, 180, 10, 180, 90, 20, 90]]]);
    const cats = await env.dv.datasets.categories(done.dataset_id);
    expect(cats.map((c) => [c.categoryId, c.name, c.annotationCount])).toEqual([[0, 'cat', 4], [1, 'dog', 3], [5, 'class_5', 1]]);
  });
});

describe('how the YAML is written', () => {
  it('names as a list, a .txt image list (./, relative and absolute lines), and a list of folders', async () => {
    const root = folder('lists');
    await image(path.join(root, 'images/x/b.jpg'), 30, 20);
    await image(path.join(root, 'images/x/a.jpg'), 30, 20);
    await image(path.join(root, 'images/x/c.jpg'), 30, 20);
    await image(path.join(root, 'images/x/unlisted.jpg'), 30, 20);
    // Two images of one stem share its label file, as in Ultralytics.
    await image(path.join(root, 'images/v2/z.png'), 16, 16, { png: true });
    write(path.join(root, 'labels/v2/z.txt'), '1 0.5 0.5 0.5 0.5\n');
    write(path.join(root, 'labels/x/a.txt'), '1 0.5 0.5 1 1\n');
    write(path.join(root, 'train.txt'), `./images/x/b.jpg\nimages/x/a.jpg\n${path.join(root, 'images/x/c.jpg')}\n\n./images/x/readme.md\n`);
    await image(path.join(root, 'images/v2/z.jpg'), 8, 8);
    await image(path.join(root, 'images/v1/y.jpg'), 8, 8);
    await image(path.join(root, 'images/v1/sub/w.jpg'), 8, 8);
    write(path.join(root, 'labels/v1/sub/w.txt'), '0 0.5 0.5 0.5 0.5\n');
    write(path.join(root, 'lists.yaml'), 'train: train.txt\nval: [images/v2, images/v1]\nnames: [ant, bee]\n');
    const done = await ingestOk({ annotationPath: path.join(root, 'lists.yaml') });
    expect(done.warnings).toEqual([
      expect.objectContaining({ code: 'images_without_annotations', count: 3 }),
    ]);
    const samples = await samplesOf(done.dataset_id);
    // A list is sorted as Ultralytics sorts it; the folders of a split in path order.
    expect(samples.map((s) => [s.fileName, s.split, s.annotationCount])).toEqual([
      ['x/a.jpg', 'train', 1], ['x/b.jpg', 'train', 0], ['x/c.jpg', 'train', 0],
      ['v1/sub/w.jpg', 'val', 1], ['v1/y.jpg', 'val', 0], ['v2/z.jpg', 'val', 1], ['v2/z.png', 'val', 1],
    ]);
    const ds = await env.dv.datasets.get(done.dataset_id);
    expect([ds.name, ds.imageDir]).toEqual(['lists', path.join(root, 'images')]);
    const anns = (await annotationsOf(done.dataset_id, samples)).flat();
    expect(anns.map((a) => [a.categoryName, box(a)])).toEqual([['bee', [0, 0, 30, 20]], ['ant', [2, 2, 4, 4]], ['bee', [2, 2, 4, 4]], ['bee', [4, 4, 8, 8]]]);
  });

  it("Roboflow's ../train/images resolves from the YAML's own folder, also when its parent is outside the data roots", async () => {
    const root = folder('roboflow');
    write(path.join(root, 'data.yaml'), "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 2\nnames: ['a-b c', 'd']\n");
    await image(path.join(root, 'train/images/t1.jpg'), 40, 40);
    write(path.join(root, 'train/labels/t1.txt'), '1 0.25 0.25 0.5 0.5\n');
    await image(path.join(root, 'valid/images/v1.jpg'), 40, 40);
    write(path.join(root, 'valid/labels/v1.txt'), '0 0.5 0.5 0.5 0.5\n');
    await image(path.join(root, 'test/images/s1.jpg'), 40, 40);
    const done = await ingestOk({ annotationPath: path.join(root, 'data.yaml') });
    const samples = await samplesOf(done.dataset_id);
    expect(samples.map((s) => [s.fileName, s.split, s.annotationCount])).toEqual([
      ['train/images/t1.jpg', 'train', 1], ['valid/images/v1.jpg', 'val', 1], ['test/images/s1.jpg', 'test', 0],
    ]);
    expect((await env.dv.datasets.get(done.dataset_id)).imageDir).toBe(root);
    expect((await env.dv.datasets.categories(done.dataset_id)).map((c) => c.name)).toEqual(['a-b c', 'd']);

    // The same folder as the only data root: `root/../train/images` is outside it.
    const only = await openTestEnv({ DATAVISOR_DATA_ROOTS: root });
    try {
      const events = await ingestAll(only.dv, { annotationPath: path.join(root, 'data.yaml'), format: 'yolo' });
      expect(events.at(-1)!.stage, events.at(-1)!.message).toBe('complete');
      expect(events.at(-1)!.image_count).toBe(3);
    } finally {
      await only.close();
    }
  });

  it('--format auto (the default) recognises a dataset YAML, its folder and a darknet folder', async () => {
    const root = folder('auto');
    write(path.join(root, 'ds/data.yaml'), 'train: images\nnames: [a]\n');
    await image(path.join(root, 'ds/images/x.jpg'), 10, 10);
    write(path.join(root, 'ds/labels/x.txt'), '0 0.5 0.5 1 1\n');
    write(path.join(root, 'dn/classes.txt'), 'a\n');
    await image(path.join(root, 'dn/y.jpg'), 10, 10);
    write(path.join(root, 'dn/y.txt'), '0 0.5 0.5 1 1\n');
    for (const annotationPath of [path.join(root, 'ds/data.yaml'), path.join(root, 'ds'), path.join(root, 'dn')]) {
      const events = await ingestAll(env.dv, { annotationPath });
      const last = events.at(-1)!;
      expect([last.stage, last.image_count, last.annotation_count], last.message).toEqual(['complete', 1, 1]);
      expect((await env.dv.datasets.get(last.dataset_id!)).format).toBe('yolo');
    }
  });

  it('a darknet / labelImg folder with classes.txt: labels beside the images, the ingest split', async () => {
    const root = folder('darknet');
    write(path.join(root, 'classes.txt'), 'person\ncar\n');
    await image(path.join(root, 'p1.jpg'), 50, 100);
    write(path.join(root, 'p1.txt'), '0 0.5 0.5 0.2 0.1\n1 0.5 0.5 1 1\n');
    await image(path.join(root, 'p2.png'), 10, 10, { png: true });
    write(path.join(root, 'p2.txt'), '1 0.5 0.5 0.5 0.5\n');
    await image(path.join(root, 'p3.jpg'), 10, 10);
    for (const annotationPath of [root, path.join(root, 'classes.txt')]) {
      const done = await ingestOk({ annotationPath, split: 'train' });
      expect(done.warnings!.map((w) => [w.code, w.count])).toEqual([['images_without_annotations', 1]]);
      const samples = await samplesOf(done.dataset_id);
      expect(samples.map((s) => [s.fileName, s.split, s.width, s.height, s.annotationCount])).toEqual([
        ['p1.jpg', 'train', 50, 100, 2], ['p2.png', 'train', 10, 10, 1], ['p3.jpg', 'train', 10, 10, 0],
      ]);
      const anns = (await annotationsOf(done.dataset_id, samples)).flat();
      expect(anns.map((a) => [a.categoryName, box(a)])).toEqual([['person', [20, 45, 10, 10]], ['car', [0, 0, 50, 100]], ['car', [2.5, 2.5, 5, 5]]]);
      expect((await env.dv.datasets.get(done.dataset_id)).name).toBe('darknet');
    }
  });

  it('sizes follow EXIF orientation (a quarter turn swaps width and height), as the labels do', async () => {
    const root = folder('exif');
    write(path.join(root, 'data.yaml'), 'train: images\nnames: [x]\n');
    await image(path.join(root, 'images/r.jpg'), 40, 20, { orientation: 6 });
    write(path.join(root, 'labels/r.txt'), '0 0.5 0.5 0.5 0.5\n');
    const done = await ingestOk({ annotationPath: path.join(root, 'data.yaml') });
    const samples = await samplesOf(done.dataset_id);
    expect(samples.map((s) => [s.width, s.height])).toEqual([[20, 40]]);
    expect(box((await annotationsOf(done.dataset_id, samples))[0]![0]!)).toEqual([5, 10, 10, 20]);
  });

  it('polygons are counted but their points not stored unless shapes are kept', async () => {
    const root = folder('shapes-off');
    write(path.join(root, 'data.yaml'), 'train: images\nnames: [x]\n');
    await image(path.join(root, 'images/p.jpg'), 10, 10);
    write(path.join(root, 'labels/p.txt'), '0 0 0 1 0 1 1\n');
    const done = await ingestOk({ annotationPath: path.join(root, 'data.yaml'), storeShapes: false });
    const samples = await samplesOf(done.dataset_id);
    const [a] = (await annotationsOf(done.dataset_id, samples))[0]!;
    expect([a!.segmentationKind, a!.polygonCount, a!.pointCount, a!.segmentation, box(a!), a!.area]).toEqual(['polygon', 1, 3, null, [0, 0, 10, 10], 50]);
  });
});

describe('over HTTP', () => {
  it('POST /datasets/ingest takes a YOLO YAML without image_dir', async () => {
    const http = await openTestEnv({ DATAVISOR_HOST: '127.0.0.1', DATAVISOR_PORT: '0' });
    const server = await startServer(http.dv);
    try {
      const root = path.join(http.dir, 'ds');
      write(path.join(root, 'data.yaml'), 'train: images/train\nval: images/val\nnames: [a]\n');
      await image(path.join(root, 'images/train/t.jpg'), 16, 8);
      write(path.join(root, 'labels/train/t.txt'), '0 0.5 0.5 0.5 0.5\n');
      await image(path.join(root, 'images/val/v.jpg'), 16, 8);
      const res = await fetch(`${server.url}/datasets/ingest`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ annotation_path: path.join(root, 'data.yaml'), format: 'yolo' }),
      });
      expect(res.status).toBe(200);
      const events = (await res.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as IngestEvent);
      const last = events.at(-1)!;
      expect([last.stage, last.image_count, last.annotation_count]).toEqual(['complete', 2, 1]);
      const page = (await (await fetch(`${server.url}/samples?dataset_id=${last.dataset_id}&split=train`)).json()) as { total: number; items: { file_name: string }[] };
      expect([page.total, page.items[0]!.file_name]).toEqual([1, 'train/t.jpg']);
    } finally {
      await server.close();
      await http.close();
    }
  });
});

describe('inputs that are not a YOLO dataset fail with a message that says what to do', () => {
  it.each([
    ['broken YAML', 'names: [a, b\ntrain: images\n', /bad\.yaml is not valid YAML at line \d+, column \d+: .*Fix the file/],
    ['no names', 'train: images\nval: images\nnc: 2\n', /has `nc` but no `names`.*Add the class names in class-id order, e.g. names: \[cat, dog\]/],
    ['not YOLO at all', 'services:\n  web:\n    image: nginx\n', /has no `names` key.*Add the class names/],
    ['a YAML list', '- a\n- b\n', /is not a YOLO dataset YAML: it holds a list, not a mapping/],
    ['no split', 'names: [a]\n', /names no split: it needs at least one of train, val, test/],
    ['names of the wrong type', 'train: images\nnames: 3\n', /`names` must be a list .* or a mapping of class ids/],
    ['a COCO JSON given as YOLO', '{"images": [], "annotations": [], "categories": []}', /^annotation_path "bad\.json" is not a YOLO dataset: it looks like a JSON object: a COCO annotation file \(--format coco\)$/],
  ])('%s', async (name, yaml, message) => {
    const root = folder(`bad-${name.replace(/\W+/g, '-')}`);
    const file = path.join(root, name.includes('COCO') ? 'bad.json' : 'bad.yaml');
    write(file, yaml);
    await image(path.join(root, 'images/a.jpg'), 10, 10);
    const e = await ingestError({ annotationPath: file });
    expect(e.code).toBe('BAD_USER_INPUT');
    expect(e.message).toMatch(message);
  });

  it('a folder with neither a dataset YAML nor classes.txt', async () => {
    const root = folder('plain');
    await image(path.join(root, 'a.jpg'), 10, 10);
    write(path.join(root, 'other.yaml'), 'key: value\n');
    const e = await ingestError({ annotationPath: root });
    expect([e.code, e.message]).toEqual(['BAD_USER_INPUT', expect.stringMatching(/is not a YOLO dataset: it holds no dataset YAML \(a \.yaml file with a `names` key\) and no classes\.txt/)]);
  });

  it('splits that all do not exist, and paths outside the data roots', async () => {
    const root = folder('nothing');
    write(path.join(root, 'data.yaml'), 'train: images/train\nval: images/val\nnames: [a]\n');
    const e = await ingestError({ annotationPath: path.join(root, 'data.yaml') });
    expect([e.code, e.message]).toEqual(['FILE_NOT_FOUND', expect.stringContaining('None of the splits of data.yaml exists (train: images/train; val: images/val)')]);

    const outside = tempDir('dv-yolo-outside-');
    try {
      await image(path.join(outside, 'images/a.jpg'), 10, 10);
      write(path.join(root, 'far.yaml'), `train: ${path.join(outside, 'images')}\nnames: [a]\n`);
      const f = await ingestError({ annotationPath: path.join(root, 'far.yaml') });
      expect(f.code).toBe('FORBIDDEN');
      const g = await ingestError({ annotationPath: path.join(outside, 'images') });
      expect(g.code).toBe('FORBIDDEN');
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('detect', () => {
  const yolo = readerFor('yolo');
  const coco = readerFor('coco');
  const file = (name: string, head: string) => ({ kind: 'file' as const, name, head, entries: [] });
  const dir = (name: string, entries: string[]) => ({ kind: 'directory' as const, name, head: '', entries });

  it('claims dataset YAMLs and their folders, and darknet folders', () => {
    expect(yolo.detect(file('data.yaml', 'path: .\ntrain: images/train\nnames:\n  0: cat\n'))).toBe(true);
    expect(yolo.detect(file('config.yml', 'names: [a, b]\n'))).toBe(true);
    expect(yolo.detect(dir('ds', ['data.yaml', 'images/', 'labels/']))).toBe(true);
    expect(yolo.detect(dir('ds', ['classes.txt', 'a.jpg', 'a.txt']))).toBe(true);
    expect(yolo.detect(dir('ds', ['classes.txt', 'images/', 'labels/']))).toBe(true);
  });

  it('leaves COCO files, VOC folders and other YAMLs alone, and COCO does not claim a YAML', () => {
    const cocoHead = '{"images":[],"annotations":[],"categories":[{"id":1,"name":"names"}]}';
    expect(yolo.detect(file('instances_val2017.json', cocoHead))).toBe(false);
    expect(yolo.detect(file('docker-compose.yaml', 'services:\n  web: {}\n'))).toBe(false);
    expect(yolo.detect(file('data.yaml', 'metadata:\n  names: [a]\n'))).toBe(false);
    expect(yolo.detect(dir('VOC2012', ['Annotations/', 'ImageSets/', 'JPEGImages/', 'voc.yaml']))).toBe(false);
    expect(yolo.detect(dir('photos', ['a.jpg', 'b.jpg']))).toBe(false);
    expect(coco.detect(file('data.yaml', 'names: [a]\n'))).toBe(false);
  });
});
