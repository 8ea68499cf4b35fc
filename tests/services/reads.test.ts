import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COCO128, ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Reads under load, through the services: more concurrent queries than reader connections, and
 * more distinct SQL texts than a reader keeps prepared, every answer checked against the file
 * (parsed here with JSON.parse as the oracle).
 */

interface CocoFile {
  images: { id: number; file_name: string }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[] }[];
  categories: { id: number; name: string }[];
}

let env: TestEnv;
let id: string;
const coco = JSON.parse(fs.readFileSync(COCO128.annotations, 'utf8')) as CocoFile;
const categoryName = new Map(coco.categories.map((c) => [c.id, c.name]));
/** Annotations of each image, in file order. */
const annotationsOf = new Map<number, CocoFile['annotations']>(coco.images.map((i) => [i.id, []]));
for (const a of coco.annotations) annotationsOf.get(a.image_id)!.push(a);

beforeAll(async () => {
  env = await openTestEnv();
  const events = await ingestAll(env.dv, { annotationPath: COCO128.annotations, imageDir: COCO128.images });
  id = events.at(-1)!.dataset_id!;
}, 60_000);

afterAll(async () => {
  await env?.close();
});

/** File names of the images with an annotation in one of the categories (and at least `min`), in file order. */
function expected(names: Set<string>, min: number): string[] {
  return coco.images
    .filter((i) => annotationsOf.get(i.id)!.length >= min && annotationsOf.get(i.id)!.some((a) => names.has(categoryName.get(a.category_id)!)))
    .map((i) => i.file_name);
}

describe('concurrent reads', () => {
  it('answers 320 concurrent filtered pages, 160 distinct statements, each as the file says', async () => {
    const names = coco.categories.map((c) => c.name);
    const requests: { categories: string[]; min?: number }[] = [];
    for (let round = 0; round < 2; round++) {
      for (let k = 1; k <= 80; k++) {
        const categories = names.slice(0, k);
        requests.push({ categories }, { categories, min: 3 });
      }
    }
    const pages = await Promise.all(
      requests.map((f) => env.dv.samples.page(id, { categories: f.categories, minAnnotations: f.min }, { kind: 'after', afterOrd: null, limit: 200 })),
    );
    requests.forEach((f, i) => {
      expect(pages[i]!.samples.map((s) => s.fileName), `categories ×${f.categories.length}, min ${f.min}`).toEqual(expected(new Set(f.categories), f.min ?? 0));
    });
  });

  it('reads the annotations of neighbouring and of scattered samples alike', async () => {
    const all = (await env.dv.samples.page(id, {}, { kind: 'after', afterOrd: null, limit: 200 })).samples;
    const dense = all.slice(10, 60);
    const everyOther = all.filter((_, i) => i % 2 === 0).slice(0, 50); // a range with gaps
    const scattered = all.filter((_, i) => i % 7 === 3);
    for (const samples of [dense, everyOther, scattered, [...scattered].reverse(), [all.at(-1)!, all[0]!]]) {
      const lists = await env.dv.samples.annotationsOf(id, samples.map((s) => s.ord));
      samples.forEach((s, i) => {
        const want = annotationsOf.get(s.id)!;
        expect(lists[i]!.map((a) => a.id)).toEqual(want.map((a) => a.id));
        expect(lists[i]!.map((a) => a.categoryName)).toEqual(want.map((a) => categoryName.get(a.category_id)));
        expect(lists[i]!.map((a) => a.bbox && [a.bbox.x, a.bbox.y, a.bbox.w, a.bbox.h])).toEqual(want.map((a) => a.bbox));
        expect(lists[i]!.every((a) => a.datasetId === id && a.sampleId === s.id && a.sampleOrd === s.ord)).toBe(true);
      });
    }
  });
});
