import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importAll as importEvents, ingestJson, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Prediction runs: a COCO results file becomes a named label set beside the ground truth, all or
 * nothing, with errors that say what is wrong and where.
 */

const IMAGES = [5, 7, 9, 11];
const gt = {
  images: IMAGES.map((id) => ({ id, file_name: `${id}.jpg`, width: 100, height: 100 })),
  annotations: IMAGES.map((id, i) => ({ id: i + 1, image_id: id, category_id: 3, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0 })),
  categories: [{ id: 3, name: 'cat' }, { id: 4, name: 'dog' }],
};

let env: TestEnv;
let datasetId: string;
let n = 0;

function write(content: unknown): string {
  const file = path.join(env.dir, `results-${n++}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const importAll = (resultsPath: string, name: string, replace?: boolean) => importEvents(env.dv, { datasetId, resultsPath, name, replace });

async function rowsOf(name: string) {
  const [run] = (await env.dv.predictions.list(datasetId)).filter((r) => r.name === name);
  if (!run) return [];
  return env.dv.db.query(
    `SELECT ord - $3 AS position, image_id, category_id, score, bbox_x, bbox_y, bbox_w, bbox_h, area, segmentation_kind, source
     FROM annotations WHERE dataset_id = $1 AND label_set = $2 ORDER BY ord`,
    [datasetId, run.labelSet, run.ordBase],
  );
}

const traces = async () => ({
  predictions: Number((await env.dv.db.query(`SELECT count(*) AS n FROM annotations WHERE label_set <> 0`))[0]!.n),
  runs: Number((await env.dv.db.query(`SELECT count(*) AS n FROM label_sets WHERE kind = 'predictions'`))[0]!.n),
  shapes: Number((await env.dv.db.query(`SELECT count(*) AS n FROM annotation_shapes`))[0]!.n),
  staging: Number((await env.dv.db.query(`SELECT count(*) AS n FROM duckdb_tables() WHERE table_name LIKE 'staging_%'`))[0]!.n),
});

beforeAll(async () => {
  env = await openTestEnv();
  datasetId = await ingestJson(env, 'gt.json', gt);
});
afterAll(() => env?.close());

describe('importing a COCO results file', () => {
  it('stores every detection in file order as a named run, with extra keys ignored', async () => {
    const results = [
      { image_id: 9, category_id: 3, bbox: [1, 2, 3, 4], score: 0.9, category_name: 'cat', id: 77, area: 5, iscrowd: 1 },
      { image_id: 5, category_id: 4, bbox: [5, 6, 7, 8], score: 0.25, segmentation: [] },
      { image_id: 9, category_id: 3, bbox: [0.5, 0.5, 10, 10], score: 0.5 },
    ];
    const events = await importAll(write(results), 'model-a');
    const done = events.at(-1)!;
    expect(done).toMatchObject({ stage: 'complete', prediction_count: 3, dataset_id: datasetId, name: 'model-a' });
    expect(events.slice(0, -1).every((e) => e.stage === 'parsing_predictions')).toBe(true);
    const rows = await rowsOf('model-a');
    // Each keeps its position in the file; the area is the box's (the result's own `area` is ignored, as pycocotools does).
    expect(rows.map((r) => [r.position, r.image_id, r.category_id, r.score])).toEqual([[0, 9, 3, 0.9], [1, 5, 4, 0.25], [2, 9, 3, 0.5]]);
    expect(rows.map((r) => [r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h, r.area, r.segmentation_kind, r.source])).toEqual([
      [1, 2, 3, 4, 12, 'none', 'prediction'], [5, 6, 7, 8, 56, 'none', 'prediction'], [0.5, 0.5, 10, 10, 100, 'none', 'prediction'],
    ]);
    const runs = await env.dv.predictions.list(datasetId);
    expect(runs.map((r) => [r.name, r.predictionCount])).toEqual([['model-a', 3]]);
    // Ground truth is untouched, and the dataset's revision moved on.
    expect((await env.dv.datasets.get(datasetId)).annotationCount).toBe(4);
    expect((await env.dv.datasets.get(datasetId)).revision).toBe(1);
  });

  it('accepts a COCO dataset file whose annotations carry scores', async () => {
    const file = write({ images: gt.images, annotations: [{ id: 1, image_id: 11, category_id: 4, bbox: [1, 1, 2, 2], score: 0.7 }], categories: gt.categories });
    expect((await importAll(file, 'as-dataset')).at(-1)).toMatchObject({ stage: 'complete', prediction_count: 1 });
    expect((await rowsOf('as-dataset')).map((r) => [r.image_id, r.score])).toEqual([[11, 0.7]]);
  });

  it('keeps a compressed RLE segmentation as the run\'s shape', async () => {
    const file = write([{ image_id: 7, category_id: 3, score: 0.4, bbox: [0, 0, 2, 2], segmentation: { size: [100, 100], counts: 'PP`0' } }]);
    expect((await importAll(file, 'masks')).at(-1)).toMatchObject({ stage: 'complete', prediction_count: 1 });
    const [row] = await rowsOf('masks');
    expect(row!.segmentation_kind).toBe('compressed_rle');
    const [run] = (await env.dv.predictions.list(datasetId)).filter((r) => r.name === 'masks');
    const [shape] = await env.dv.db.query(`SELECT segmentation FROM annotation_shapes WHERE dataset_id = $1 AND ord = $2`, [datasetId, run!.ordBase]);
    expect(JSON.parse(shape!.segmentation as string)).toEqual({ size: [100, 100], counts: 'PP`0' });
  });

  it('gives a mask without a box the box around it, and its pixel count as area (as loadRes does)', async () => {
    // Column-major runs on a 4x4 image: 5 background, 2 set, 2 background, 2 set, 5 background:
    // pixels (x 1, y 1..2) and (x 2, y 1..2), a 2x2 square at (1, 1).
    const file = write([{ image_id: 7, category_id: 3, score: 0.6, segmentation: { size: [4, 4], counts: [5, 2, 2, 2, 5] } }]);
    expect((await importAll(file, 'mask-only')).at(-1)).toMatchObject({ stage: 'complete', prediction_count: 1 });
    expect((await rowsOf('mask-only')).map((r) => [r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h, r.area, r.segmentation_kind])).toEqual([[1, 1, 2, 2, 4, 'rle']]);
  });

  it('counts a bbox of NaN / Infinity as a warning and keeps the detection without a box', async () => {
    const file = write('[{"image_id": 5, "category_id": 3, "bbox": [NaN, 1, Infinity, 2], "score": 0.3}, {"image_id": 7, "category_id": 3, "bbox": [1, 1, 1, 1], "score": 0.2}]');
    const done = (await importAll(file, 'python')).at(-1)!;
    expect(done).toMatchObject({ stage: 'complete', prediction_count: 2 });
    expect(done.warnings).toEqual([expect.objectContaining({ code: 'non_finite_bbox', count: 1, examples: [0] })]);
    expect((await rowsOf('python')).map((r) => r.bbox_w)).toEqual([null, 1]);
  });

  it('refuses a name already used (CONFLICT), and replaces it when asked', async () => {
    const before = await rowsOf('model-a');
    const refused = (await importAll(write([{ image_id: 5, category_id: 3, bbox: [0, 0, 1, 1], score: 1 }]), 'model-a')).at(-1)!;
    expect(refused).toMatchObject({ stage: 'error', code: 'CONFLICT' });
    expect(refused.message).toMatch(/already has a prediction run named "model-a".*replace/);
    expect(await rowsOf('model-a')).toEqual(before);
    const replaced = (await importAll(write([{ image_id: 5, category_id: 3, bbox: [0, 0, 1, 1], score: 1 }]), 'model-a', true)).at(-1)!;
    expect(replaced).toMatchObject({ stage: 'complete', prediction_count: 1 });
    expect((await rowsOf('model-a')).map((r) => r.score)).toEqual([1]);
  });

  it.each([
    ['an image_id not in the dataset (counted, first ones shown)',
      [{ image_id: 5, category_id: 3, score: 1 }, { image_id: 404, category_id: 3, score: 1 }, { image_id: 405, category_id: 3, score: 1 }, { image_id: 404, category_id: 3, score: 1 }],
      'INVALID_RESULTS', /3 prediction\(s\) name 2 image_id value\(s\) that are not in the dataset's images \(image_id 404 at \[1\], image_id 405 at \[2\], image_id 404 at \[3\]\)/],
    ['an unknown category_id', [{ image_id: 5, category_id: 99, score: 1 }], 'INVALID_RESULTS', /name 1 category_id value\(s\) that are not in the dataset's categories \(category_id 99 at \[0\]\)/],
    ['a missing score', [{ image_id: 5, category_id: 3, score: 1 }, { image_id: 5, category_id: 3 }], 'INVALID_RESULTS', /\(at \[1\]\): "score" is missing/],
    ['a score that is a string', [{ image_id: 5, category_id: 3, score: '0.5' }], 'INVALID_RESULTS', /\(at \[0\]\.score\): "score" must be a finite number, found the string "0\.5"/],
    ['a bbox of three numbers', [{ image_id: 5, category_id: 3, score: 1, bbox: [1, 2, 3] }], 'INVALID_RESULTS', /\[0\].*"bbox" must be \[x, y, width, height\], found 3 numbers/],
    ['an array of numbers', [1, 2], 'INVALID_RESULTS', /each result must be an object/],
    ['truncated JSON', '[{"image_id": 5, "category_id": 3, "score": 1}, {"image_id"', 'INVALID_JSON', /Truncated JSON/],
  ])('refuses %s and leaves nothing behind', async (_what, content, code, message) => {
    const before = await traces();
    const revision = (await env.dv.datasets.get(datasetId)).revision;
    const err = (await importAll(write(content), 'bad')).at(-1)!;
    expect(err).toMatchObject({ stage: 'error', code });
    expect(err.message).toMatch(message);
    expect(await traces()).toEqual(before);
    expect((await env.dv.datasets.get(datasetId)).revision).toBe(revision);
  });

  it('refuses a bad name, a missing file and an unknown dataset before reading anything', async () => {
    expect((await importAll(write([]), '')).at(-1)).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    expect((await importAll(write([]), 'ground_truth')).at(-1)).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    expect((await importAll(path.join(env.dir, 'nope.json'), 'x')).at(-1)).toMatchObject({ stage: 'error', code: 'FILE_NOT_FOUND' });
    const events = await importEvents(env.dv, { datasetId: 'aaaaaaaaaaaaaaaa', resultsPath: write([]), name: 'x' });
    expect(events.at(-1)).toMatchObject({ stage: 'error', code: 'NOT_FOUND' });
  });

  it('deleting a run removes every row of it; deleting the dataset removes every run', async () => {
    await env.dv.predictions.delete(datasetId, 'masks');
    await env.dv.predictions.delete(datasetId, 'mask-only');
    expect(await rowsOf('masks')).toEqual([]);
    expect(Number((await env.dv.db.query(`SELECT count(*) AS n FROM annotation_shapes WHERE dataset_id = $1`, [datasetId]))[0]!.n)).toBe(0);
    await expect(env.dv.predictions.delete(datasetId, 'masks')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await env.dv.datasets.delete(datasetId);
    expect(await traces()).toEqual({ predictions: 0, runs: 0, shapes: 0, staging: 0 });
  });
});
