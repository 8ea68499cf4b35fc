import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, ingestAll, openTestEnv, readJson, type TestEnv } from '../helpers/env.js';

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
let dense: string;
/**
 * The demo dataset (tests/helpers/fixtures.ts) with its annotations spread over 80 categories, as
 * many as COCO has: filters on 1..80 of them are more distinct statements than a reader keeps.
 */
const coco = ((): CocoFile => {
  const demo = readJson<CocoFile>(DEMO.annotations);
  const categories = Array.from({ length: 80 }, (_, k) => ({ id: k + 1 + Math.floor(k / 8), name: `class ${k}` }));
  return { ...demo, categories, annotations: demo.annotations.map((a, n) => ({ ...a, category_id: categories[n % 80]!.id })) };
})();
const categoryName = new Map(coco.categories.map((c) => [c.id, c.name]));
/** Annotations of each image, in file order. */
const annotationsOf = new Map<number, CocoFile['annotations']>(coco.images.map((i) => [i.id, []]));
for (const a of coco.annotations) annotationsOf.get(a.image_id)!.push(a);

beforeAll(async () => {
  env = await openTestEnv();
  const spread = path.join(env.dir, 'eighty-categories.json');
  fs.writeFileSync(spread, JSON.stringify(coco));
  const events = await ingestAll(env.dv, { annotationPath: spread, imageDir: DEMO.images });
  id = events.at(-1)!.dataset_id!;
  const file = path.join(env.dir, 'dense.json');
  fs.writeFileSync(file, JSON.stringify(DENSE));
  dense = (await ingestAll(env.dv, { annotationPath: file, imageDir: env.dir })).at(-1)!.dataset_id!;
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

/**
 * 300 images. Every third has 20 `crowd` annotations (more per image than a streamed category
 * window reads ahead for, so it reads again), every seventh one `rare`; the annotations are
 * listed by category, as real files do.
 */
const DENSE = (() => {
  const images = Array.from({ length: 300 }, (_, i) => ({ id: 1000 + i, file_name: `img${i}.jpg`, width: 640, height: 480 }));
  const annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number }[] = [];
  for (const i of images.keys()) if (i % 3 === 0) for (let k = 0; k < 20; k++) annotations.push({ id: 0, image_id: 1000 + i, category_id: 1, bbox: [k, k, 10, 10], area: 100, iscrowd: 0 });
  for (const i of images.keys()) if (i % 7 === 0) annotations.push({ id: 0, image_id: 1000 + i, category_id: 2, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 });
  annotations.forEach((a, n) => (a.id = n + 1));
  return { images, annotations, categories: [{ id: 1, name: 'crowd' }, { id: 2, name: 'rare' }] };
})();
const denseOrds = (every: number) => DENSE.images.map((_, i) => i).filter((i) => i % every === 0);

describe('category windows', () => {
  it('pages forward through a category with many annotations per image, by offset and by cursor', async () => {
    for (const [name, every] of [['crowd', 3], ['rare', 7]] as const) {
      const all = denseOrds(every);
      for (const limit of [1, 10, 50, 200]) {
        for (const offset of [0, 5, 37, all.length - 3, all.length, all.length + 10]) {
          const page = await env.dv.samples.page(dense, { categories: [name] }, { kind: 'offset', offset, limit });
          expect(page.samples.map((s) => s.ord), `${name} offset ${offset} limit ${limit}`).toEqual(all.slice(offset, offset + limit));
          expect(page.hasMore).toBe(offset + limit < all.length);
        }
        const seen: number[] = [];
        let after: number | null = null;
        for (;;) {
          const page = await env.dv.samples.page(dense, { categories: [name] }, { kind: 'after', afterOrd: after, limit });
          seen.push(...page.samples.map((s) => s.ord));
          if (!page.hasMore) break;
          after = page.samples.at(-1)!.ord;
        }
        expect(seen, `${name} by cursor, limit ${limit}`).toEqual(all);
      }
    }
  });

  it('answers windows beyond the read-ahead and backward windows exactly too', async () => {
    const all = denseOrds(3);
    const back = await env.dv.samples.page(dense, { categories: ['crowd'] }, { kind: 'before', beforeOrd: 150, limit: 10 });
    expect(back.samples.map((s) => s.ord)).toEqual(all.filter((o) => o < 150).slice(-10));
    expect((await env.dv.samples.page(dense, { categories: ['crowd'] }, { kind: 'offset', offset: 6_000, limit: 10 })).samples).toEqual([]);
    const both = await env.dv.samples.page(dense, { categories: ['crowd', 'rare'] }, { kind: 'offset', offset: 0, limit: 200 });
    expect(both.samples.map((s) => s.ord)).toEqual(DENSE.images.map((_, i) => i).filter((i) => i % 3 === 0 || i % 7 === 0).slice(0, 200));
  });
});

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

describe('file names of cold thumbnails', () => {
  it('concurrent lookups of a dataset not yet in memory cost one query', async () => {
    const before = env.dv.db.queryCount;
    const found = await Promise.all(Array.from({ length: 10 }, () => env.dv.datasets.get(dense)));
    expect(env.dv.db.queryCount - before).toBe(1);
    expect(new Set(found.map((d) => d.id))).toEqual(new Set([dense]));
    const misses = await Promise.allSettled([env.dv.datasets.get('nosuchdataset'), env.dv.datasets.get('nosuchdataset')]);
    expect(misses.map((m) => m.status === 'rejected' && (m.reason as { code?: string }).code)).toEqual(['NOT_FOUND', 'NOT_FOUND']);
    // A failed lookup is not kept: asking again asks the database again.
    const afterMiss = env.dv.db.queryCount;
    await expect(env.dv.datasets.get('nosuchdataset')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(env.dv.db.queryCount - afterMiss).toBe(1);
  });

  it('a page of concurrent misses costs one query, and the samples around it none', async () => {
    const page = await env.dv.samples.page(id, {}, { kind: 'offset', offset: 0, limit: 40 });
    await env.dv.datasets.get(id);
    const before = env.dv.db.queryCount;
    const generated = env.dv.thumbnails.stats.generated;
    const made = await Promise.all(page.samples.map((s) => env.dv.samples.thumbnail(id, s.id, 'small')));
    expect(env.dv.db.queryCount - before).toBe(1);
    for (const t of made) expect(t.width).toBeGreaterThan(0), expect(t.width).toBeLessThanOrEqual(128);

    const rest = coco.images.slice(40).map((img) => img.id);
    await Promise.all(rest.map((imageId) => env.dv.samples.thumbnail(id, imageId, 'small')));
    expect(env.dv.db.queryCount - before).toBe(1);
    expect(env.dv.thumbnails.stats.generated - generated).toBe(coco.images.length);
  }, 60_000);
});
