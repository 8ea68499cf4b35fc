import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateCoco } from '../../dist/services/evaluation/index.js';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The evaluation as a user runs it: the ground truth ingested as a dataset, the results imported
 * as a prediction run, evaluated by the service, and every stored outcome read back from the
 * database. pycocotools' answers (tests/fixtures/eval-reference) are the oracle, to 1e-9.
 */

const CASES = path.resolve(import.meta.dirname, '../fixtures/eval-reference/cases');
const METRICS = ['ap', 'ap50', 'ap75', 'ap_small', 'ap_medium', 'ap_large', 'ar1', 'ar10', 'ar100', 'ar_small', 'ar_medium', 'ar_large'];

interface Expected {
  iou_type: 'bbox' | 'segm';
  metrics: Record<string, number>;
  per_category: { category_id: number; ap: number; ap50: number; ap75: number; ar100: number }[];
  at_iou_50: { n_tp: number; n_fp: number; n_fn: number };
  matching: {
    detections: { index: number; evaluated: boolean; tp: boolean; ignored: boolean; gt_id: number | null }[];
    ground_truth: { gt_id: number; ignored: boolean; dt_id: number | null }[];
    per_image: Record<string, { tp: number; fp: number; fn: number }>;
  };
}

let env: TestEnv;
beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(() => env?.close());

const close = (got: number, want: number) => expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThanOrEqual(1e-9);

describe.each(fs.readdirSync(CASES).sort())('case %s through ingest, import and evaluate', (name) => {
  const dir = path.join(CASES, name);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Expected;

  it('equals pycocotools: the 12 numbers, every category, every detection\'s and object\'s outcome, every image\'s counts', async () => {
    const { dv } = env;
    const data = path.join(env.dir, name);
    fs.mkdirSync(data);
    fs.copyFileSync(path.join(dir, 'gt.json'), path.join(data, 'gt.json'));
    fs.copyFileSync(path.join(dir, 'results.json'), path.join(data, 'results.json'));
    const done = (await ingestAll(dv, { annotationPath: path.join(data, 'gt.json'), imageDir: data, datasetName: name, storeShapes: true })).at(-1)!;
    expect(done.stage).toBe('complete');
    const datasetId = done.dataset_id!;
    const events = [];
    for await (const e of dv.predictions.import({ datasetId, resultsPath: path.join(data, 'results.json'), name: 'run' })) events.push(e);
    expect(events.at(-1)!.stage).toBe('complete');

    const evaluation = await dv.evaluations.evaluate({ datasetId, predictions: 'run', iouType: expected.iou_type });
    for (const m of METRICS) close(evaluation.metrics[m]!, expected.metrics[m]!);
    const perCategory = evaluation.perCategory as Expected['per_category'];
    expect(perCategory.map((c) => c.category_id)).toEqual(expected.per_category.map((c) => c.category_id).sort((a, b) => a - b));
    for (const want of expected.per_category) {
      const got = perCategory.find((c) => c.category_id === want.category_id)!;
      for (const k of ['ap', 'ap50', 'ap75', 'ar100'] as const) close(got[k], want[k]);
    }
    expect(evaluation.totals).toMatchObject({ tp: expected.at_iou_50.n_tp, fp: expected.at_iou_50.n_fp, fn: expected.at_iou_50.n_fn });
    expect(evaluation.stale).toBe(false);

    // Stored outcomes, read back with plain SQL: each detection by its position in the results file.
    const [run] = await dv.predictions.list(datasetId);
    const detections = await dv.db.query(
      `SELECT d.ord - $2 AS idx, d.outcome, g.annotation_id AS gt_id FROM eval_detections d
       LEFT JOIN annotations g ON g.dataset_id = $3 AND g.ord = d.gt_ord WHERE d.evaluation_id = $1 ORDER BY d.ord`,
      [evaluation.id, run!.ordBase, datasetId],
    );
    const OUTCOME = ['tp', 'fp', 'ignored', 'not_evaluated'];
    expect(detections.map((d) => [d.idx, OUTCOME[d.outcome as number], d.gt_id ?? null])).toEqual(
      expected.matching.detections.map((d) => [d.index, !d.evaluated ? 'not_evaluated' : d.tp ? 'tp' : d.ignored ? 'ignored' : 'fp', d.gt_id]),
    );
    const objects = await dv.db.query(
      `SELECT a.annotation_id AS gt_id, o.outcome, o.dt_ord - $2 AS dt FROM eval_ground_truth o JOIN annotations a ON a.dataset_id = $3 AND a.ord = o.ord
       WHERE o.evaluation_id = $1 ORDER BY o.ord`,
      [evaluation.id, run!.ordBase, datasetId],
    );
    const GT_OUTCOME = ['tp', 'fn', 'ignored'];
    for (const want of expected.matching.ground_truth) {
      const got = objects.filter((o) => o.gt_id === want.gt_id);
      expect(got.length, `GT ${want.gt_id}`).toBe(1);
      expect(GT_OUTCOME[got[0]!.outcome as number], `GT ${want.gt_id}`).toBe(want.ignored ? 'ignored' : want.dt_id === null ? 'fn' : 'tp');
    }
    const samples = await dv.db.query(
      `SELECT s.image_id, e.tp, e.fp, e.fn FROM eval_samples e JOIN samples s ON s.dataset_id = $2 AND s.ord = e.sample_ord WHERE e.evaluation_id = $1`,
      [evaluation.id, datasetId],
    );
    const perImage = Object.fromEntries(samples.map((s) => [String(s.image_id), { tp: s.tp, fp: s.fp, fn: s.fn }]));
    for (const [image, want] of Object.entries(expected.matching.per_image)) {
      expect(perImage[image] ?? { tp: 0, fp: 0, fn: 0 }, `image ${image}`).toEqual({ tp: want.tp, fp: want.fp, fn: want.fn });
    }
  });
});

describe('stored precision-recall curves', () => {
  it('are the engine\'s, bit for bit, also when a curve starts at precision 1 and a score of 1 (integers before fractions)', async () => {
    const { dv } = env;
    const data = path.join(env.dir, 'curves');
    fs.mkdirSync(data);
    // Three objects, found with scores 1, 0.9 (TPs), 0.8 (FP), 0.7 (TP): precision 1, 1, 0.75 … and
    // scores 1, 0.9, 0.7 at the recall points. Taken as JS numbers, such a list used to be bound
    // as INTEGER[] from its first value, and the evaluation failed on the next one.
    const box = (x: number) => [x, 10, 20, 20];
    const gt = {
      images: [{ id: 1, file_name: 'a.jpg', width: 200, height: 100 }],
      categories: [{ id: 1, name: 'a' }, { id: 2, name: 'b' }],
      annotations: [0, 40, 80].map((x, i) => ({ id: i + 1, image_id: 1, category_id: 1, bbox: box(x), area: 400, iscrowd: 0 })),
    };
    const results = [
      { image_id: 1, category_id: 1, bbox: box(0), score: 1 },
      { image_id: 1, category_id: 1, bbox: box(40), score: 0.9 },
      { image_id: 1, category_id: 1, bbox: box(120), score: 0.8 },
      { image_id: 1, category_id: 1, bbox: box(80), score: 0.7 },
    ];
    fs.writeFileSync(path.join(data, 'gt.json'), JSON.stringify(gt));
    fs.writeFileSync(path.join(data, 'results.json'), JSON.stringify(results));
    const done = (await ingestAll(dv, { annotationPath: path.join(data, 'gt.json'), imageDir: data, datasetName: 'curves' })).at(-1)!;
    expect(done.stage).toBe('complete');
    const datasetId = done.dataset_id!;
    for await (const e of dv.predictions.import({ datasetId, resultsPath: path.join(data, 'results.json'), name: 'run' })) expect(e.stage).not.toBe('error');

    const evaluation = await dv.evaluations.evaluate({ datasetId, predictions: 'run' });
    const expected = evaluateCoco(gt, results, { iouType: 'bbox' }).prCurves;
    expect(expected[0]!.precision[0]![0]).toBe(1);
    expect(expected[0]!.precision[0]!.some((p) => !Number.isInteger(p))).toBe(true);
    const stored = await dv.evaluations.curves(datasetId, evaluation.id);
    expect(stored).toHaveLength(2 * 10);
    for (const curve of stored) {
      const want = expected.find((c) => c.categoryId === curve.categoryId)!;
      expect(curve.precision).toEqual(want.precision[curve.iouIndex]);
      expect(curve.scores).toEqual(want.scores[curve.iouIndex]);
    }
  });
});
