import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestJson, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * An export of many chunks writes the file it reads, value for value: every image and annotation
 * of the input in the file's order (the annotations are listed out of image order, which is how
 * they are stored, so the export sorts them back), boxes and areas as their shortest text
 * (JSON.parse gives back the same doubles), and rows with extra keys among the others.
 */

const IMAGES = 1_500;
const PER_IMAGE = 40;

/** A fixed linear congruential sequence. */
function random(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

function cocoFile() {
  const next = random(5);
  const images = Array.from({ length: IMAGES }, (_, i) => ({ id: 10 + i * 3, file_name: `img ${i}.jpg`, width: 640 + (i % 7), height: 480 }));
  const annotations = images.flatMap((img, i) =>
    Array.from({ length: PER_IMAGE }, (_, k) => {
      const w = Number((next() * 300).toFixed(k % 5));
      const h = Number((next() * 200).toFixed(2));
      const a: Record<string, unknown> = {
        id: 1 + i * PER_IMAGE + k, image_id: img.id, category_id: 1 + (k % 3),
        bbox: [Number((next() * 600).toFixed(2)), Number((next() * 400).toFixed(3)), w, h], area: k % 11 === 0 ? next() * 1e4 : w * h, iscrowd: k % 13 === 0 ? 1 : 0,
      };
      if (k % 17 === 0) a.note = `β ${k}`;
      return a;
    }),
  );
  // The file lists them in a shuffled order (Fisher–Yates on the fixed sequence).
  for (let i = annotations.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [annotations[i], annotations[j]] = [annotations[j]!, annotations[i]!];
  }
  return { images, annotations, categories: [1, 2, 3].map((id) => ({ id, name: `c${id}`, supercategory: 's' })) };
}

let env: TestEnv;
let datasetId: string;
const file = cocoFile();

beforeAll(async () => {
  env = await openTestEnv();
  datasetId = await ingestJson(env, 'big.json', file);
});
afterAll(() => env?.close());

describe('a large COCO export', () => {
  it('writes every value of the input, in the file\'s order', async () => {
    // Many chunks of 2,048 rows.
    expect(file.annotations.length).toBeGreaterThan(25 * 2048);
    const prepared = await env.dv.exports.prepare({ datasetId });
    const parts: Uint8Array[] = [];
    for await (const chunk of prepared.chunks()) parts.push(chunk);
    const out = JSON.parse(Buffer.concat(parts).toString('utf8')) as typeof file;
    expect(out.images).toEqual(file.images);
    expect(out.annotations).toHaveLength(file.annotations.length);
    // The export's keys, in its order: no segmentation in the input is written as [].
    const expected = file.annotations.map((e) => ({ id: e.id, image_id: e.image_id, category_id: e.category_id, bbox: e.bbox, area: e.area, iscrowd: e.iscrowd, segmentation: [], ...(e.note ? { note: e.note } : {}) }));
    expect(out.annotations).toEqual(expected);
    expect(JSON.stringify(out.annotations)).toBe(JSON.stringify(expected));
    // The whole section is that text, line by line: no byte more or less.
    const text = Buffer.concat(parts).toString('utf8');
    expect(text.slice(text.indexOf('"annotations":[\n') + 16, text.lastIndexOf('\n]}'))).toBe(expected.map((e) => JSON.stringify(e)).join(',\n'));
  });
});
