import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { hasShared, ingestAll, openTestEnv, RBC, RBC_TRAIN, readJson, traces, type TestEnv } from '../helpers/env.js';

/**
 * `into`: a COCO file added to an existing dataset as a new split, atomically. The committed
 * Roboflow RBC export (valid, test; train where ../shared is) is the real case: every split starts
 * its image and annotation ids at 0, and each split's images are in their own folder.
 */

interface Coco {
  images: { id: number; file_name: string }[];
  annotations: { id: number; image_id: number; category_id: number }[];
  categories: { id: number; name: string }[];
}
const VALID = readJson<Coco>(RBC('valid').annotations);
const TEST = readJson<Coco>(RBC('test').annotations);
const RBC_DIR = path.dirname(RBC('valid').images);

let env: TestEnv;
beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(() => env?.close());

const run = (r: IngestRequest) => ingestAll(env.dv, r);
const last = (events: IngestEvent[]) => events.at(-1)!;

async function ingestSplit(split: 'valid' | 'test', extra: Partial<IngestRequest> = {}): Promise<IngestEvent> {
  return last(await run({ annotationPath: RBC(split).annotations, imageDir: RBC(split).images, format: 'coco', split, ...extra }));
}

/** Every row of a dataset, to compare before and after a refused addition. */
async function snapshot(id: string) {
  const q = (sql: string) => env.dv.db.query(sql, [id]);
  return {
    dataset: await q(`SELECT * EXCLUDE (created_at) FROM datasets WHERE id = $1`),
    samples: await q(`SELECT * FROM samples WHERE dataset_id = $1 ORDER BY ord`),
    annotations: await q(`SELECT * FROM annotations WHERE dataset_id = $1 ORDER BY ord`),
    categories: await q(`SELECT * FROM categories WHERE dataset_id = $1 ORDER BY category_id`),
    labelSets: await q(`SELECT * EXCLUDE (created_at) FROM label_sets WHERE dataset_id = $1 ORDER BY label_set`),
  };
}

/** Per category: annotations and distinct images over several files, from the JSON alone. */
function categoryCounts(...files: Coco[]) {
  const out = new Map<number, { annotations: number; images: Set<string> }>();
  files.forEach((f, i) => {
    for (const c of f.categories) if (!out.has(c.id)) out.set(c.id, { annotations: 0, images: new Set() });
    for (const a of f.annotations) {
      const c = out.get(a.category_id)!;
      c.annotations++;
      c.images.add(`${i}:${a.image_id}`);
    }
  });
  return [...out].sort((a, b) => a[0] - b[0]).map(([id, c]) => ({ categoryId: id, annotationCount: c.annotations, imageCount: c.images.size }));
}

describe('adding a split to a dataset (into)', () => {
  let id: string;

  it('makes the Roboflow valid and test files one dataset of two splits with exact counts', async () => {
    const first = await ingestSplit('valid', { datasetName: 'rbc' });
    expect(first.stage).toBe('complete');
    id = first.dataset_id!;
    const before = await env.dv.datasets.get(id);
    const added = await ingestSplit('test', { into: 'rbc' }); // by its unique name
    expect(added).toMatchObject({ stage: 'complete', dataset_id: id, image_count: TEST.images.length, annotation_count: TEST.annotations.length });

    const d = await env.dv.datasets.get(id);
    expect(d.imageCount).toBe(VALID.images.length + TEST.images.length);
    expect(d.annotationCount).toBe(VALID.annotations.length + TEST.annotations.length);
    expect(d.categoryCount).toBe(new Set([...VALID.categories, ...TEST.categories].map((c) => c.id)).size);
    expect(d.revision).toBe(before.revision + 1);
    expect(d.split).toBeNull();
    // One image folder for both: the export's folder, the splits' names leading each file name.
    expect(d.imageDir).toBe(RBC_DIR);

    for (const [split, file] of [['valid', VALID], ['test', TEST]] as const) {
      expect(await env.dv.samples.count(id, { split })).toBe(file.images.length);
      const anns = await env.dv.db.query(
        `SELECT count(*) AS n FROM annotations a JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord WHERE a.dataset_id = $1 AND s.split = $2`,
        [id, split],
      );
      expect(Number(anns[0]!.n)).toBe(file.annotations.length);
    }
    const cats = (await env.dv.datasets.categories(id)).map((c) => ({ categoryId: c.categoryId, annotationCount: c.annotationCount, imageCount: c.imageCount }));
    expect(cats).toEqual(categoryCounts(VALID, TEST));
    const perSample = await env.dv.db.query(
      `SELECT count(*) AS n FROM samples s WHERE dataset_id = $1 AND annotation_count <> (SELECT count(*) FROM annotations a WHERE a.dataset_id = s.dataset_id AND a.sample_ord = s.ord)`,
      [id],
    );
    expect(Number(perSample[0]!.n)).toBe(0);
  });

  it('renumbers the colliding image and annotation ids of the added split and keeps the file\'s', async () => {
    const rows = await env.dv.db.query(
      `SELECT ord, image_id, file_name, split, metadata FROM samples WHERE dataset_id = $1 ORDER BY ord`, [id],
    );
    const ids = rows.map((r) => Number(r.image_id));
    expect(new Set(ids).size).toBe(rows.length);
    expect(rows.map((r) => r.ord)).toEqual(rows.map((_, i) => i));
    const valid = rows.filter((r) => r.split === 'valid');
    const test = rows.filter((r) => r.split === 'test');
    // valid kept its ids; test's start after valid's largest.
    expect(valid.map((r) => [Number(r.image_id), r.file_name])).toEqual(VALID.images.map((i) => [i.id, `valid/${i.file_name}`]));
    const base = Math.max(...VALID.images.map((i) => i.id)) + 1;
    expect(test.map((r) => [Number(r.image_id), r.file_name, JSON.parse(r.metadata as string).file_image_id])).toEqual(
      TEST.images.map((img, i) => [base + i, `test/${img.file_name}`, img.id]),
    );
    // Each annotation still belongs to its own image: (file image id, category) pairs per split.
    const anns = await env.dv.db.query(
      `SELECT s.split, coalesce(TRY_CAST(json_extract(s.metadata, '$.file_image_id') AS BIGINT), s.image_id) AS file_image, a.image_id, s.image_id AS sample_image,
              a.category_id, a.annotation_id, a.extra
       FROM annotations a JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord WHERE a.dataset_id = $1 ORDER BY a.ord`,
      [id],
    );
    expect(anns.every((a) => a.image_id === a.sample_image)).toBe(true);
    const pairs = (split: string) => anns.filter((a) => a.split === split).map((a) => `${a.file_image}:${a.category_id}`).sort();
    expect(pairs('valid')).toEqual(VALID.annotations.map((a) => `${a.image_id}:${a.category_id}`).sort());
    expect(pairs('test')).toEqual(TEST.annotations.map((a) => `${a.image_id}:${a.category_id}`).sort());
    const testAnnIds = anns.filter((a) => a.split === 'test').map((a) => JSON.parse(a.extra as string).file_annotation_id).sort((a, b) => a - b);
    expect(testAnnIds).toEqual(TEST.annotations.map((a) => a.id).sort((a, b) => a - b));
    const d = await env.dv.datasets.get(id);
    expect(d.warnings.find((w) => w.code === 'image_ids_renumbered')).toMatchObject({ count: TEST.images.length });
    expect(d.warnings.find((w) => w.code === 'annotation_ids_renumbered')).toMatchObject({ count: TEST.annotations.length });
  });

  it('serves the originals of both splits from the one image folder', async () => {
    for (const split of ['valid', 'test'] as const) {
      const [s] = (await env.dv.samples.page(id, { split }, { kind: 'offset', offset: 0, limit: 1 })).samples;
      const file = await env.dv.samples.imageFile(id, s!.id);
      const original = path.join(RBC(split).images, s!.fileName.slice(split.length + 1));
      expect(fs.readFileSync(file.path).equals(fs.readFileSync(original))).toBe(true);
    }
  });

  it('maps a results file of one split through that split\'s file ids (predictions import with split)', async () => {
    // The test file's own ids, as a model run on that file reports them.
    const results = TEST.annotations.slice(0, 5).map((a) => ({ image_id: a.image_id, category_id: a.category_id, bbox: [1, 2, 3, 4], score: 0.5 }));
    const file = path.join(env.dir, 'test-results.json');
    fs.writeFileSync(file, JSON.stringify(results));
    const events: { stage: string; code?: string }[] = [];
    for await (const e of env.dv.predictions.import({ datasetId: id, resultsPath: file, name: 'on-test', split: 'test' })) events.push(e);
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: 5 });
    const [run] = await env.dv.predictions.list(id);
    const rows = await env.dv.db.query(
      `SELECT s.split, json_extract(s.metadata, '$.file_image_id')::BIGINT AS file_id FROM annotations a JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord
       WHERE a.dataset_id = $1 AND a.label_set = $2 ORDER BY a.ord`,
      [id, run!.labelSet],
    );
    expect(rows.map((r) => [r.split, Number(r.file_id)])).toEqual(results.map((r) => ['test', r.image_id]));
    await env.dv.predictions.delete(id, 'on-test');
  });

  it('refuses a split the dataset has (CONFLICT), leaving it as it was', async () => {
    const before = await snapshot(id);
    const e = await ingestSplit('test', { into: id });
    expect(e).toMatchObject({ stage: 'error', code: 'CONFLICT' });
    expect(e.message).toContain('"test" (10 images)');
    expect(await snapshot(id)).toEqual(before);
  });

  it('leaves the dataset exactly as before when the added file fails midway', async () => {
    const before = await snapshot(id);
    // A real file with one bad reference near its end: found after every row was written.
    const bad = structuredClone(TEST);
    bad.annotations.at(-1)!.image_id = 999;
    const file = path.join(env.dir, 'bad-annotations.coco.json');
    fs.writeFileSync(file, JSON.stringify(bad));
    const e = last(await run({ annotationPath: file, imageDir: RBC('test').images, format: 'coco', split: 'extra', into: id }));
    expect(e).toMatchObject({ stage: 'error', code: 'INVALID_COCO' });
    expect(await snapshot(id)).toEqual(before);
    expect((await traces(env.dv)).staging).toBe(0);
  });

  it('refuses a category id whose name differs, and an addition without a split', async () => {
    const before = await snapshot(id);
    const renamed = structuredClone(TEST);
    renamed.categories[1]!.name = 'red cell';
    const file = path.join(env.dir, 'renamed.coco.json');
    fs.writeFileSync(file, JSON.stringify(renamed));
    const e = last(await run({ annotationPath: file, imageDir: RBC('test').images, format: 'coco', split: 'renamed', into: id }));
    expect(e).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    expect(e.message).toContain(`1 is "${TEST.categories[1]!.name}" in the dataset but "red cell" in the added file`);
    const unsplit = last(await run({ annotationPath: RBC('test').annotations, imageDir: RBC('test').images, format: 'coco', into: id }));
    expect(unsplit).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    expect(unsplit.message).toContain('give split');
    expect(await snapshot(id)).toEqual(before);
  });

  it('answers NOT_FOUND for an unknown target and refuses a name with into', async () => {
    expect(last(await run({ annotationPath: RBC('test').annotations, imageDir: RBC('test').images, split: 'x', into: 'no-such-dataset' }))).toMatchObject({ stage: 'error', code: 'NOT_FOUND' });
    const both = last(await run({ annotationPath: RBC('test').annotations, imageDir: RBC('test').images, split: 'x', into: id, datasetName: 'n' }));
    expect(both).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
  });

  it('keeps the file\'s ids when none collides, and adds new categories', async () => {
    const dir = path.join(env.dir, 'disjoint');
    fs.mkdirSync(dir);
    const coco = {
      images: [{ id: 1000, file_name: 'a.jpg', width: 10, height: 10 }],
      annotations: [{ id: 5000, image_id: 1000, category_id: 7, bbox: [1, 1, 2, 2], area: 4, iscrowd: 0 }],
      categories: [...TEST.categories, { id: 7, name: 'platelet' }],
    };
    fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify(coco));
    // The common folder of RBC's and this temp folder is outside the data roots: refused.
    const outside = last(await run({ annotationPath: path.join(dir, 'a.json'), imageDir: dir, split: 'extra', into: id }));
    expect(outside).toMatchObject({ stage: 'error', code: 'FORBIDDEN' });
    const d0 = await snapshot(id);

    // A dataset of its own in the temp folder takes it in.
    fs.mkdirSync(path.join(dir, 'first'));
    const firstCoco = { images: [{ id: 1, file_name: 'b.jpg', width: 10, height: 10 }], annotations: [], categories: [{ id: 1, name: 'rbc' }] };
    fs.writeFileSync(path.join(dir, 'first', 'b.json'), JSON.stringify(firstCoco));
    const own = last(await run({ annotationPath: path.join(dir, 'first', 'b.json'), imageDir: path.join(dir, 'first'), split: 'train' }));
    const added = last(await run({ annotationPath: path.join(dir, 'a.json'), imageDir: dir, split: 'extra', into: own.dataset_id }));
    expect(added.warnings?.map((w) => w.code)).not.toContain('image_ids_renumbered');
    const rows = await env.dv.db.query(`SELECT image_id, file_name, split, metadata FROM samples WHERE dataset_id = $1 ORDER BY ord`, [own.dataset_id]);
    expect(rows.map((r) => [Number(r.image_id), r.file_name, r.split, r.metadata])).toEqual([[1, 'first/b.jpg', 'train', null], [1000, 'a.jpg', 'extra', null]]);
    const cats = await env.dv.datasets.categories(own.dataset_id!);
    expect(cats.map((c) => [c.categoryId, c.name, c.annotationCount])).toEqual([[0, 'RBC-WBC', 0], [1, 'rbc', 0], [2, 'wbc', 0], [7, 'platelet', 1]]);
    expect(await snapshot(id)).toEqual(d0);
  });
});

describe.skipIf(!hasShared)('the whole RBC export (../shared)', () => {
  it('becomes one dataset of three splits', async () => {
    const dir = path.dirname(RBC_TRAIN.images);
    const file = (split: string) => path.join(dir, split, '_annotations.coco.json');
    const files = Object.fromEntries(['train', 'valid', 'test'].map((s) => [s, readJson<Coco>(file(s))]));
    const first = last(await run({ annotationPath: file('train'), imageDir: path.join(dir, 'train'), split: 'train', datasetName: 'rbc-full' }));
    for (const split of ['valid', 'test']) {
      expect(last(await run({ annotationPath: file(split), imageDir: path.join(dir, split), split, into: first.dataset_id })).stage).toBe('complete');
    }
    const d = await env.dv.datasets.get(first.dataset_id!);
    const all = Object.values(files);
    expect([d.imageCount, d.annotationCount]).toEqual([all.reduce((n, f) => n + f.images.length, 0), all.reduce((n, f) => n + f.annotations.length, 0)]);
    expect(d.imageDir).toBe(dir);
    for (const [split, f] of Object.entries(files)) expect(await env.dv.samples.count(d.id, { split })).toBe(f.images.length);
    const cats = (await env.dv.datasets.categories(d.id)).map((c) => ({ categoryId: c.categoryId, annotationCount: c.annotationCount, imageCount: c.imageCount }));
    expect(cats).toEqual(categoryCounts(...all));
  });
});
