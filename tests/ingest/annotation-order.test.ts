import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RICE_PEST_YOLO } from '../helpers/fixtures.js';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Annotations are stored sorted by sample, each with its sample's ord, and categories carry their
 * counts, whichever way the writer gets there: a plain copy of the staged rows (and counts taken
 * while appending) when image ids are the samples' ords and the annotations come in image order
 * (YOLO, VOC, COCO files written image by image), a join, a sort and a GROUP BY otherwise.
 * Expected values come from the files written here, never from the writer.
 */

interface Coco {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: 0 }[];
  categories: { id: number; name: string }[];
}

/** `n` images with ids `imageIds`, k = i % 3 annotations on the i-th; ids from `annId(j)` in the order given. */
function coco(imageIds: number[], order: 'by-image' | 'reversed', annId: (j: number) => number = (j) => j + 1): Coco {
  const anns: Omit<Coco['annotations'][number], 'id'>[] = [];
  imageIds.forEach((id, i) => {
    for (let k = 0; k < i % 3; k++) anns.push({ image_id: id, category_id: 1 + k, bbox: [k, i, 5, 5], area: 25, iscrowd: 0 });
  });
  if (order === 'reversed') anns.reverse();
  return {
    images: imageIds.map((id, i) => ({ id, file_name: `${i}.jpg`, width: 64, height: 48 })),
    annotations: anns.map((a, j) => ({ id: annId(j), ...a })),
    categories: [{ id: 1, name: 'a' }, { id: 2, name: 'b' }],
  };
}

let env: TestEnv;
let n = 0;

beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(async () => {
  await env?.close();
});

async function ingest(request: { annotationPath: string; imageDir?: string; format?: 'coco' | 'yolo' }) {
  const last = (await ingestAll(env.dv, request)).at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return last;
}

/** The stored annotations in the table's own order (rowid: as written). */
async function stored(datasetId: string) {
  return env.dv.db.query(
    `SELECT sample_ord, ord, annotation_id, image_id FROM annotations WHERE dataset_id = $1 AND label_set = 0 ORDER BY rowid`,
    [datasetId],
  );
}

describe('annotations stored sorted by sample', () => {
  const cases: [string, Coco][] = [
    ['image ids are ords, annotations in image order (copied as staged)', coco([0, 1, 2, 3, 4, 5, 6, 7], 'by-image')],
    ['image ids are ords, annotations in reverse image order', coco([0, 1, 2, 3, 4, 5, 6, 7], 'reversed')],
    ['image ids are not ords, annotations in image order', coco([70, 3, 12, 5, 9, 40, 1, 2], 'by-image')],
    ['image ids are ords, annotation ids repeat', coco([0, 1, 2, 3, 4, 5, 6, 7], 'by-image', (j) => Math.floor(j / 2))],
  ];
  for (const [name, file] of cases) {
    it(name, async () => {
      const dir = path.join(env.dir, `coco-${n++}`);
      fs.mkdirSync(dir);
      const annotationPath = path.join(dir, 'instances.json');
      fs.writeFileSync(annotationPath, JSON.stringify(file));
      const last = await ingest({ annotationPath, imageDir: dir, format: 'coco' });
      const ordOf = new Map(file.images.map((img, i) => [img.id, i]));
      // In the file's order: each annotation's ord is its position, its sample the position of its image.
      const expected = file.annotations.map((a, ord) => ({ sample_ord: ordOf.get(a.image_id)!, ord, annotation_id: a.id, image_id: a.image_id }));
      const rows = await stored(last.dataset_id!);
      expect([...rows].sort((x, y) => Number(x.ord) - Number(y.ord))).toEqual(expected);
      expect(rows.every((r, i) => i === 0 || Number(r.sample_ord) >= Number(rows[i - 1]!.sample_ord))).toBe(true);
      // Each category's annotations and distinct images, counted here from the file.
      const categories = await env.dv.datasets.categories(last.dataset_id!);
      expect(categories.map((c) => [c.categoryId, c.annotationCount, c.imageCount])).toEqual(file.categories.map((c) => {
        const of = file.annotations.filter((a) => a.category_id === c.id);
        return [c.id, of.length, new Set(of.map((a) => a.image_id)).size];
      }));
      const counts = new Map<number, number>();
      for (const a of file.annotations) counts.set(a.id, (counts.get(a.id) ?? 0) + 1);
      const repeated = [...counts.values()].filter((c) => c > 1);
      const dup = last.warnings!.find((w) => w.code === 'duplicate_annotation_ids');
      if (repeated.length === 0) expect(dup).toBeUndefined();
      else expect(dup).toMatchObject({ count: repeated.reduce((s, c) => s + c, 0) });
    });
  }

  it('an annotation of an image id outside the samples is refused though image ids are ords', async () => {
    for (const bad of [8, -1]) {
      const file = coco([0, 1, 2, 3, 4, 5, 6, 7], 'by-image');
      file.annotations.at(-1)!.image_id = bad;
      const annotationPath = path.join(env.dir, `orphan-${n++}.json`);
      fs.writeFileSync(annotationPath, JSON.stringify(file));
      const last = (await ingestAll(env.dv, { annotationPath, imageDir: env.dir, format: 'coco' })).at(-1)!;
      expect(last).toMatchObject({ stage: 'error', code: 'INVALID_COCO' });
      expect(last.message).toContain(`annotations[${file.annotations.length - 1}]`);
      expect(last.message).toContain(`image_id ${bad},`);
    }
  });

  it('a YOLO dataset: ids from 1, sorted by sample, each label line under its image', async () => {
    const last = await ingest({ annotationPath: path.join(RICE_PEST_YOLO, 'data.yaml'), format: 'yolo' });
    const rows = await stored(last.dataset_id!);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.annotation_id)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.every((r, i) => i === 0 || Number(r.sample_ord) >= Number(rows[i - 1]!.sample_ord))).toBe(true);
    // Each sample's annotation count is the number of lines of its label file, read here.
    const { imageDir } = await env.dv.datasets.get(last.dataset_id!);
    const samples = await env.dv.db.query(`SELECT ord, file_name, annotation_count FROM samples WHERE dataset_id = $1 ORDER BY ord`, [last.dataset_id!]);
    for (const s of samples) {
      const label = path.join(imageDir, String(s.file_name).replace(/(^|\/)images\//, '$1labels/').replace(/\.[^.]+$/, '.txt'));
      const lines = fs.existsSync(label) ? fs.readFileSync(label, 'utf8').split('\n').filter((l) => l.trim() !== '').length : 0;
      expect(rows.filter((r) => r.sample_ord === s.ord).length, String(s.file_name)).toBe(lines);
    }
    expect(rows.length).toBe(samples.reduce((sum, s) => sum + Number(s.annotation_count), 0));
  });
});
