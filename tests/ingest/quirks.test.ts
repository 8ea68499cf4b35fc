import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent } from '../../dist/services/ingest/ingest.js';
import { annotationJson } from '../../dist/services/datasets/json-views.js';
import type { Annotation, Sample } from '../../dist/services/datasets/samples.js';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Data quirks that are not fatal: the ingest completes, every quirk is counted exactly, reported
 * in the `complete` event and stored on the dataset, and the odd rows themselves are kept.
 */

const BIG = 900100000257; // > 2^31, as COCO's own crowd annotation ids
const W = 64;
const H = 48;

/** Python's json.dump writes these bare; JSON.stringify cannot, so they go in as markers. */
const NAN = '__NaN__';
const INF = '__Infinity__';
const NEG_INF = '__-Infinity__';
const pythonJson = (value: unknown, indent?: number) =>
  JSON.stringify(value, null, indent)
    .replaceAll(`"${NAN}"`, 'NaN')
    .replaceAll(`"${INF}"`, 'Infinity')
    .replaceAll(`"${NEG_INF}"`, '-Infinity');

const QUIRKY = {
  info: { description: 'quirks', year: 2024 },
  licenses: [{ id: 1, name: 'CC0', url: 'https://creativecommons.org/publicdomain/zero/1.0/' }],
  images: [
    { id: 0, file_name: 'a.jpg', width: W, height: H, license: 1, date_captured: '2024-01-02 03:04:05' },
    { id: BIG, file_name: '写真_é.jpg', width: W, height: H, foo: { bar: 1 } },
    { id: 2, file_name: 'empty.jpg', width: W, height: H },
    { id: 3, file_name: 'missing1.jpg', width: W, height: H },
    { id: 4, file_name: 'missing2.jpg', width: W, height: H },
    { id: 5, file_name: 'a.jpg', width: W, height: H },
    { id: 6, file_name: 'nosize.jpg' },
  ],
  annotations: [
    // ord 0: two polygons (4 + 3 points), a score and keys COCO does not define.
    {
      id: 10, image_id: 0, category_id: 1, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0,
      segmentation: [[1, 1, 11, 1, 11, 11, 1, 11], [2, 2, 3, 2, 3, 3]], score: 0.75,
      attributes: { occluded: true, color: 'red' },
    },
    // ord 1: the same id again, and a box 6 px past the right edge.
    { id: 10, image_id: 0, category_id: 2, bbox: [60, 40, 10, 10], area: 100, iscrowd: 0, segmentation: [] },
    // ord 2: half a pixel past the edge: within the tolerance, not a warning.
    { id: 13, image_id: 0, category_id: 1, bbox: [54.5, 0.25, 10, 10], area: 100, iscrowd: 0, segmentation: [[54.5, 0.25, 64.5, 0.25, 64.5, 10.25]] },
    // ord 3: area 100 for a 5×5 box.
    { id: 11, image_id: BIG, category_id: 1, bbox: [0, 0, 5, 5], area: 100, iscrowd: 0, segmentation: [[0, 0, 5, 0, 5, 5]] },
    // ord 4: zero width; uncompressed RLE.
    { id: 12, image_id: BIG, category_id: 2, bbox: [3, 3, 0, 4], area: 0, iscrowd: 1, segmentation: { size: [H, W], counts: [0, 10, 3062] } },
    // ord 5: area NaN; compressed RLE (string counts).
    { id: BIG, image_id: 3, category_id: 1, bbox: [1, 1, 2, 2], area: NAN, iscrowd: 1, segmentation: { size: [H, W], counts: 'PPYo0' } },
    // ord 6: id 0, score Infinity, keypoints.
    {
      id: 0, image_id: 6, category_id: 1, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0, segmentation: [], score: INF,
      keypoints: [1, 2, 2, 3, 4, 1, 0, 0, 0], num_keypoints: 2,
    },
    // ord 7: on the second image named a.jpg.
    { id: 14, image_id: 5, category_id: 2, bbox: [0, 0, 4, 4], area: 16, iscrowd: 0, segmentation: [[0, 0, 4, 0, 4, 4, 0, 4]] },
  ],
  categories: [
    { id: 0, name: 'shapes', supercategory: 'none' }, // Roboflow's placeholder
    { id: 1, name: 'cat', supercategory: 'shapes' },
    { id: 2, name: 'dog', supercategory: 'shapes' },
    { id: 3, name: 'bird', supercategory: 'shapes' },
  ],
};

let env: TestEnv;
let imageDir: string;
let jpeg: Buffer;

function write(name: string, content: string | Buffer): string {
  const p = path.join(env.dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function ingestOk(annotationPath: string): Promise<IngestEvent> {
  const events = await ingestAll(env.dv, { annotationPath, imageDir, storeShapes: true });
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return last;
}

const byCode = (warnings: { code: string; count: number; examples: unknown[] }[]) =>
  Object.fromEntries(warnings.map((w) => [w.code, { count: w.count, examples: w.examples }]));

beforeAll(async () => {
  // Shapes (polygons, RLE, keypoints) are stored only when asked for.
  env = await openTestEnv({ DATAVISOR_STORE_SHAPES: '1' });
  imageDir = path.join(env.dir, 'images');
  fs.mkdirSync(imageDir);
  jpeg = await sharp({ create: { width: W, height: H, channels: 3, background: '#808040' } }).jpeg().toBuffer();
  for (const name of ['a.jpg', '写真_é.jpg', 'empty.jpg', 'nosize.jpg']) fs.writeFileSync(path.join(imageDir, name), jpeg);
});

afterAll(async () => {
  await env?.close();
});

describe('a file full of quirks', () => {
  let complete: IngestEvent;
  let id: string;
  const sample = (imageId: number): Promise<Sample> => env.dv.samples.get(id, imageId);
  const annotationsOf = async (ord: number): Promise<Annotation[]> => (await env.dv.samples.annotationsOf(id, [ord], { shapes: true }))[0]!;

  beforeAll(async () => {
    complete = await ingestOk(write('quirky.json', pythonJson(QUIRKY)));
    id = complete.dataset_id!;
  });

  it('completes with every image, annotation and category kept', () => {
    expect(complete).toMatchObject({ image_count: 7, annotation_count: 8, category_count: 4 });
  });

  it('counts every quirk exactly, with examples, in the complete event and on the dataset', async () => {
    expect(byCode(complete.warnings!)).toEqual({
      duplicate_annotation_ids: { count: 2, examples: [10] },
      bbox_outside_image: { count: 1, examples: [10] },
      degenerate_bbox: { count: 1, examples: [12] },
      area_inconsistent_with_bbox: { count: 1, examples: [11] },
      unused_categories: { count: 2, examples: ['shapes', 'bird'] },
      images_without_annotations: { count: 2, examples: ['empty.jpg', 'missing2.jpg'] },
      image_files_missing: { count: 2, examples: ['missing1.jpg', 'missing2.jpg'] },
      duplicate_file_names: { count: 1, examples: ['a.jpg'] },
      images_without_size: { count: 1, examples: ['nosize.jpg'] },
      non_finite_area: { count: 1, examples: [BIG] },
      non_standard_numbers: { count: 2, examples: [] },
    });
    for (const w of complete.warnings!) expect(w.message.length).toBeGreaterThan(10);
    expect((await env.dv.datasets.get(id)).warnings).toEqual(complete.warnings);
  });

  it('keeps both annotations that share an id, told apart by their position', async () => {
    const anns = await annotationsOf(0);
    expect(anns.map((a) => [a.ord, a.id, a.categoryId, a.categoryName])).toEqual([
      [0, 10, 1, 'cat'],
      [1, 10, 2, 'dog'],
      [2, 13, 1, 'cat'],
    ]);
    expect(anns[1]!.bbox).toEqual({ x: 60, y: 40, w: 10, h: 10 });
    expect(anns[2]!.bbox).toEqual({ x: 54.5, y: 0.25, w: 10, h: 10 });
  });

  it('keeps images without annotations, missing files, duplicate names and missing sizes as samples', async () => {
    const rows = await Promise.all(QUIRKY.images.map((i) => sample(i.id)));
    expect(rows.map((s) => [s.ord, s.id, s.fileName, s.annotationCount, s.fileMissing, s.width, s.height])).toEqual([
      [0, 0, 'a.jpg', 3, false, W, H],
      [1, BIG, '写真_é.jpg', 2, false, W, H],
      [2, 2, 'empty.jpg', 0, false, W, H],
      [3, 3, 'missing1.jpg', 1, true, W, H],
      [4, 4, 'missing2.jpg', 0, true, W, H],
      [5, 5, 'a.jpg', 1, false, W, H],
      [6, 6, 'nosize.jpg', 1, false, null, null],
    ]);
    expect([rows[0]!.licenseId, rows[0]!.dateCaptured]).toEqual([1, '2024-01-02 03:04:05']);
  });

  it('keeps ids beyond 2^31 and id 0 exactly', async () => {
    const big = await sample(BIG);
    expect(big.id).toBe(BIG);
    const [crowd] = await annotationsOf(3); // image 3 holds annotation BIG
    expect([crowd!.id, crowd!.sampleId]).toEqual([BIG, 3]);
    const [zero] = await annotationsOf(6);
    expect([zero!.id, zero!.sampleId]).toEqual([0, 6]);
    expect((await sample(0)).id).toBe(0);
  });

  it('keeps keys COCO does not define in metadata / extra', async () => {
    expect((await sample(BIG)).metadata).toEqual({ foo: { bar: 1 } });
    expect((await sample(0)).metadata).toBeNull();
    const [first, second] = await annotationsOf(0);
    expect(first!.extra).toEqual({ attributes: { occluded: true, color: 'red' } });
    expect(second!.extra).toBeNull();
  });

  it('stores score as the confidence, and a scored annotation as a prediction', async () => {
    const [first, second] = await annotationsOf(0);
    expect(first!.score).toBe(0.75);
    expect(annotationJson(first!).confidence).toBe(0.75);
    expect(first!.source).toBe('prediction');
    expect(second!.score).toBeNull();
    expect(second!.source).toBe('ground_truth');
  });

  it('reads NaN and Infinity as null (a NaN area is also non_finite_area)', async () => {
    const [nanArea] = await annotationsOf(3);
    expect(nanArea!.area).toBeNull();
    expect(nanArea!.bbox).toEqual({ x: 1, y: 1, w: 2, h: 2 });
    const [infScore] = await annotationsOf(6);
    expect(infScore!.score).toBeNull();
    expect(infScore!.area).toBe(12);
  });

  it('stores keypoints and num_keypoints', async () => {
    const [kp] = await annotationsOf(6);
    expect(kp!.numKeypoints).toBe(2);
    expect(kp!.keypoints).toEqual([1, 2, 2, 3, 4, 1, 0, 0, 0]);
  });

  it('tells the segmentation kinds apart and counts polygons and points', async () => {
    const all = (await env.dv.samples.annotationsOf(id, [0, 1, 3, 5, 6], { shapes: true })).flat().sort((a, b) => a.ord - b.ord);
    expect(all.map((a) => [a.ord, a.segmentationKind, a.polygonCount, a.pointCount, a.isCrowd])).toEqual([
      [0, 'polygon', 2, 7, false],
      [1, 'none', 0, 0, false],
      [2, 'polygon', 1, 3, false],
      [3, 'polygon', 1, 3, false],
      [4, 'rle', 0, 0, true],
      [5, 'compressed_rle', 0, 0, true],
      [6, 'none', 0, 0, false],
      [7, 'polygon', 1, 4, false],
    ]);
    const seg = new Map(all.map((a) => [a.ord, a.segmentation]));
    expect(seg.get(0)).toEqual(QUIRKY.annotations[0]!.segmentation);
    expect(seg.get(4)).toEqual({ size: [H, W], counts: [0, 10, 3062] });
    expect(seg.get(5)).toEqual({ size: [H, W], counts: 'PPYo0' });
  });

  it('counts per category: annotations, images, and zero for unused ones', async () => {
    const [cats] = await env.dv.datasets.categoriesOf([id]);
    expect(cats!.map((c) => [c.categoryId, c.name, c.supercategory, c.annotationCount, c.imageCount])).toEqual([
      [0, 'shapes', 'none', 0, 0],
      [1, 'cat', 'shapes', 5, 4],
      [2, 'dog', 'shapes', 3, 3],
      [3, 'bird', 'shapes', 0, 0],
    ]);
  });
});

describe('encoding', () => {
  const tiny = (images: object[], extra: object = {}) => ({
    ...extra,
    images,
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [1, 1, 2, 2], area: 4, iscrowd: 0, segmentation: [] }],
    categories: [{ id: 1, name: 'thing' }],
  });

  it('accepts a UTF-8 byte order mark at the start of the file', async () => {
    const body = JSON.stringify(tiny([{ id: 1, file_name: 'a.jpg', width: W, height: H }]));
    const last = await ingestOk(write('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)])));
    expect(last).toMatchObject({ image_count: 1, annotation_count: 1, category_count: 1 });
    expect(last.warnings).toEqual([]);
  });

  // Reads are 64 KiB blocks, which the parser slices in 16 KiB; a character whose bytes are split
  // across blocks must come out whole.
  it.each([
    ['写真_é.jpg', '写', 65535],
    ['写真_é.jpg', '写', 65534],
    ['写真_é.jpg', 'é', 65535],
    ['写真_é.jpg', '写', 16383],
    ['猫🐱.jpg', '🐱', 65533],
    ['猫🐱.jpg', '🐱', 65535],
    // The low half of the surrogate pair and 15 more characters end the block.
    [`🐱${'y'.repeat(15)}.jpg`, '🐱', 65536 - 4 - 15],
  ])('keeps the file name %s when %s starts at byte %i', async (name, char, at) => {
    fs.writeFileSync(path.join(imageDir, name), jpeg);
    const head = '{"info": {"description": "';
    const tail = `"}, "images": [{"id": 1, "file_name": "${name.slice(0, name.indexOf(char))}`;
    const pad = at - Buffer.byteLength(head) - Buffer.byteLength(tail);
    const text = `${head}${'p'.repeat(pad)}"}, "images": [{"id": 1, "file_name": "${name}", "width": ${W}, "height": ${H}}], ` +
      '"annotations": [], "categories": [{"id": 1, "name": "thing"}]}';
    expect(Buffer.from(text).indexOf(Buffer.from(char))).toBe(at);
    const last = await ingestOk(write(`boundary-${at}-${Buffer.from(char).toString('hex')}.json`, text));
    const s = await env.dv.samples.get(last.dataset_id!, 1);
    expect(s.fileName).toBe(name);
    expect(s.fileMissing).toBe(false);
  });

  it('does not rewrite "NaN" or "Infinity" inside strings', async () => {
    const note = 'depth: NaN, tilt: -Infinity}';
    const doc = tiny([{ id: 1, file_name: 'a.jpg', width: W, height: H, note }]);
    (doc.annotations[0] as { area: unknown }).area = NAN;
    const last = await ingestOk(write('nan-in-string.json', pythonJson(doc)));
    expect((await env.dv.samples.get(last.dataset_id!, 1)).metadata).toEqual({ note });
    expect(byCode(last.warnings!).non_standard_numbers).toEqual({ count: 1, examples: [] });
  });

  it('reads NaN / Infinity of an indented json.dump wherever the read blocks split them', async () => {
    // json.dump(coco, f, indent=4): array elements sit on their own line after 16+ spaces, so
    // the separator before a NaN can be far from it.
    // File names of varying length shift the NaNs against the block edges.
    const n = 2000;
    const calib = [NAN, INF, NEG_INF, NAN, 1.5, NAN, INF, NEG_INF];
    const images = Array.from({ length: n }, (_, i) => ({ id: i + 1, file_name: `${'i'.repeat(i % 7)}${i}.jpg`, width: W, height: H, calib }));
    const text = pythonJson(tiny(images), 4);
    expect(text.length).toBeGreaterThan(40 * 16384);
    const last = await ingestOk(write('indented-nan.json', text));
    expect(last.image_count).toBe(n);
    expect(byCode(last.warnings!).non_standard_numbers).toEqual({ count: n * 7, examples: [] });
    const s = await env.dv.samples.get(last.dataset_id!, n);
    expect(s.metadata).toEqual({ calib: [null, null, null, null, 1.5, null, null, null] });
  });
});
