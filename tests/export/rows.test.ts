import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestJson, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Every kind of image and annotation row a COCO export writes (the text DuckDB builds,
 * db/export.ts): each line is the canonical JSON of its object (JSON.stringify's own text: numbers
 * as String writes them, strings escaped as it escapes them), holds what the input held (keys the
 * columns could not take come back from the row's extra keys, once), and COCO's keys come first in
 * a fixed order.
 */

type Obj = Record<string, unknown>;

const images: Obj[] = [
  { id: 7, file_name: 'a "quoted" \\ näme \u0001\u001f 😀.jpg', width: 640, height: 480, license: 2, coco_url: 'http://x/7.jpg', date_captured: '2013-11-14 11:18:45', flickr_url: 'http://f/7', camera: { make: 'Canon', iso: 100 } },
  { id: 8, file_name: 'b.jpg', width: '640px', height: 480, license: 'CC' },
  { id: 9, file_name: 'c.jpg' },
];
const annotations: Obj[] = [
  { id: 1, image_id: 7, category_id: 1, bbox: [10.5, 20.25, 30.125, 40.0625], area: 1223.4, iscrowd: 0 },
  { id: 2, image_id: 7, category_id: 2, bbox: [1e-7, 0.1 + 0.2, 123456789012.5, 5], area: 12.5, iscrowd: 0, segmentation: [[1, 2, 3.5, 4, 5, 6.25]], note: 'β\u0007', attributes: { occluded: false } },
  { id: 3, image_id: 8, category_id: 1, bbox: [0, 0, 4, 2], area: 8, iscrowd: 1, segmentation: { size: [480, 640], counts: [0, 5, 10, 5] } },
  { id: 4, image_id: 8, category_id: 2, area: 3, iscrowd: 0, segmentation: [[0, 0, 1, 0, 1, 1]] },
  { id: 5, image_id: 9, category_id: 1, bbox: [2, 3, 4, 5], area: 20, iscrowd: 0, num_keypoints: 1, keypoints: [2, 3, 2, 0, 0, 0] },
  { id: 6, image_id: 9, category_id: 2, bbox: [1, 1, 1, 1], area: '12.5', iscrowd: 'yes' },
  { id: 10, image_id: 7, category_id: 1, bbox: [5, 5, 5, 5], area: 25 },
];
const categories = [{ id: 1, name: 'a' }, { id: 2, name: 'b', supercategory: 's' }];

const IMAGE_KEYS = ['id', 'file_name', 'width', 'height', 'license', 'coco_url', 'date_captured', 'flickr_url'];
const ANNOTATION_KEYS = ['id', 'image_id', 'category_id', 'bbox', 'area', 'iscrowd', 'segmentation', 'num_keypoints', 'keypoints', 'score'];

let env: TestEnv;
let lines: { images: string[]; annotations: string[] };

beforeAll(async () => {
  env = await openTestEnv();
  const id = await ingestJson(env, 'kinds.json', { images, annotations, categories }, { storeShapes: true });
  const prepared = await env.dv.exports.prepare({ datasetId: id });
  const parts: Uint8Array[] = [];
  for await (const chunk of prepared.chunks()) parts.push(chunk);
  const text = Buffer.concat(parts).toString('utf8');
  const section = (name: string, end: string) => text.slice(text.indexOf(`"${name}":[\n`) + name.length + 5, text.indexOf(end, text.indexOf(`"${name}":[\n`))).split(',\n');
  lines = { images: section('images', '\n],\n'), annotations: section('annotations', '\n]}') };
});
afterAll(() => env?.close());

/** The object a line holds; the line must be JSON.stringify's text of it. */
function parsed(line: string): Obj {
  const o = JSON.parse(line) as Obj;
  expect(line).toBe(JSON.stringify(o));
  return o;
}

/**
 * The COCO keys written from columns come first, in `order`; the row's other keys after them,
 * among them the COCO keys whose value the columns could not take (`kept`).
 */
function expectKeyOrder(o: Obj, order: string[], kept: string[] = []) {
  const keys = Object.keys(o);
  const own = order.filter((k) => k in o && !kept.includes(k));
  expect(keys.slice(0, own.length)).toEqual(own);
  expect(keys.slice(own.length)).toEqual(expect.arrayContaining(kept));
}

describe('the rows of a COCO export', () => {
  it('writes each image as its canonical JSON: every key it had, none added, non-COCO values from its metadata', () => {
    expect(lines.images).toHaveLength(images.length);
    lines.images.forEach((line, i) => {
      const o = parsed(line);
      expect(o).toEqual(images[i]);
      expectKeyOrder(o, IMAGE_KEYS, i === 1 ? ['width', 'license'] : []);
    });
  });

  it('writes each annotation as its canonical JSON: boxes and areas exactly, shapes as stored, iscrowd and segmentation always', () => {
    expect(lines.annotations).toHaveLength(annotations.length);
    lines.annotations.forEach((line, i) => {
      const o = parsed(line);
      const input = annotations[i]!;
      expect(o).toEqual({ iscrowd: 0, segmentation: [], ...input });
      expectKeyOrder(o, ANNOTATION_KEYS, i === 5 ? ['area', 'iscrowd'] : []);
    });
    // A key kept as the file had it (a text area, iscrowd "yes") is written once, from there.
    expect(lines.annotations[5]!.match(/"area"/g)).toHaveLength(1);
    expect(lines.annotations[5]!.match(/"iscrowd"/g)).toHaveLength(1);
  });
});
