import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, SHARED } from '../helpers/fixtures.js';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The two generated reference cases (500 images bbox, 300 images segm) through the whole stack:
 * ingest, import, evaluate from DuckDB, outcomes read back per image. Their inputs are made by
 * the benchmark kit's generators beside the repository, so these run where ../shared is.
 */

const REFERENCE = path.join(SHARED, 'eval-reference');
const present = hasShared && fs.existsSync(REFERENCE);

interface Expected {
  metrics: Record<string, number>;
  per_category: { category_id: number; ap: number; ap50: number; ap75: number; ar100: number }[];
  per_image_at_iou_50: Record<string, { tp: number; fp: number; fn: number }>;
}

let env: TestEnv;
beforeAll(async () => {
  if (present) env = await openTestEnv();
});
afterAll(() => env?.close());

async function evaluateCase(name: string, gt: string, results: string, iouType: 'bbox' | 'segm', expected: Expected) {
  const { dv } = env;
  const done = (await ingestAll(dv, { annotationPath: gt, imageDir: env.dir, datasetName: name, storeShapes: iouType === 'segm' })).at(-1)!;
  expect(done.stage, done.message).toBe('complete');
  const datasetId = done.dataset_id!;
  for await (const e of dv.predictions.import({ datasetId, resultsPath: results, name: 'run' })) {
    if (e.stage === 'error') throw new Error(e.message);
  }
  const evaluation = await dv.evaluations.evaluate({ datasetId, predictions: 'run', iouType });
  for (const [k, v] of Object.entries(expected.metrics)) expect(Math.abs(evaluation.metrics[k]! - v), k).toBeLessThanOrEqual(1e-9);
  const perCategory = new Map((evaluation.perCategory as Expected['per_category']).map((c) => [c.category_id, c]));
  for (const want of expected.per_category) {
    for (const k of ['ap', 'ap50', 'ap75', 'ar100'] as const) {
      expect(Math.abs(perCategory.get(want.category_id)![k] - want[k]), `category ${want.category_id} ${k}`).toBeLessThanOrEqual(1e-9);
    }
  }
  const rows = await dv.db.query(
    `SELECT s.image_id, e.tp, e.fp, e.fn FROM eval_samples e JOIN samples s ON s.dataset_id = $2 AND s.ord = e.sample_ord WHERE e.evaluation_id = $1`,
    [evaluation.id, datasetId],
  );
  const got = Object.fromEntries(rows.filter((r) => r.tp || r.fp || r.fn).map((r) => [String(r.image_id), { tp: r.tp, fp: r.fp, fn: r.fn }]));
  const want = Object.fromEntries(Object.entries(expected.per_image_at_iou_50).filter(([, v]) => v.tp || v.fp || v.fn));
  expect(got).toEqual(want);
}

describe.skipIf(!present)('the generated reference cases through ingest, import and evaluate', () => {
  it('bbox, 500 images', async () => {
    const gt = path.join(env.dir, 'gt-500.json');
    const preds = path.join(env.dir, 'preds-500.json');
    execFileSync(process.execPath, [path.join(SHARED, 'bench', 'gen-coco.mjs'), '--images', '500', '--seed', '11', '--out', gt], { stdio: 'ignore' });
    execFileSync('python3', [path.join(SHARED, 'bench', 'gen-preds.py'), gt, preds, '--seed', '5'], { stdio: 'ignore' });
    await evaluateCase('bbox-500', gt, preds, 'bbox', JSON.parse(fs.readFileSync(path.join(REFERENCE, 'expected-bbox-500.json'), 'utf8')));
  });

  it('segm, 300 images', async () => {
    const gt = path.join(env.dir, 'gt-segm.json');
    const preds = path.join(env.dir, 'segm.json');
    fs.writeFileSync(gt, zlib.gunzipSync(fs.readFileSync(path.join(REFERENCE, 'segm-300', 'gt-segm.json.gz'))));
    fs.writeFileSync(preds, zlib.gunzipSync(fs.readFileSync(path.join(REFERENCE, 'segm-300', 'segm.json.gz'))));
    await evaluateCase('segm-300', gt, preds, 'segm', JSON.parse(fs.readFileSync(path.join(REFERENCE, 'expected-segm-300.json'), 'utf8')));
  });
});
