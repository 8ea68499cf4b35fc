import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  evaluateCoco,
  type CocoGroundTruthFile,
  type CocoResult,
  type ImageOutcome,
} from '../../dist/services/evaluation/index.js';

// The generated cases live beside the repository, with the generators of their inputs.
const SHARED = path.resolve(import.meta.dirname, '../..', '../shared');
const REFERENCE = path.join(SHARED, 'eval-reference');
const present = fs.existsSync(REFERENCE);
if (!present) console.log(`generated COCOeval cases skipped: ${REFERENCE} is not there`);

interface Expected {
  inputs: { gt_sha256: string; results_sha256: string };
  metrics: Record<string, number>;
  per_category: { category_id: number; ap: number; ap50: number; ap75: number; ar100: number }[];
  at_iou_50: { n_tp: number; n_fp: number; n_fn: number; n_ignored_dt: number; n_not_evaluated_dt: number };
  per_image_at_iou_50: Record<string, { tp: number; fp: number; fn: number }>;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-eval-cases-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');

function check(expected: Expected, gtBytes: Buffer, resultsBytes: Buffer, iouType: 'bbox' | 'segm') {
  expect(sha256(gtBytes), 'GT input differs from the reference one').toBe(expected.inputs.gt_sha256);
  expect(sha256(resultsBytes), 'results input differs from the reference one').toBe(expected.inputs.results_sha256);
  const images: ImageOutcome[] = [];
  const result = evaluateCoco(
    JSON.parse(gtBytes.toString('utf8')) as CocoGroundTruthFile,
    JSON.parse(resultsBytes.toString('utf8')) as (CocoResult & { image_id: number })[],
    { iouType, onImage: (o) => images.push(o) },
  );
  for (const [key, value] of Object.entries(expected.metrics)) {
    const got = result.stats[key as keyof typeof result.stats];
    expect(Math.abs(got - value), `${key}: ${got} vs ${value}`).toBeLessThanOrEqual(1e-9);
  }
  expect(result.perCategory.map((c) => c.categoryId)).toEqual(expected.per_category.map((c) => c.category_id));
  for (const row of expected.per_category) {
    const got = result.perCategory.find((c) => c.categoryId === row.category_id)!;
    for (const key of ['ap', 'ap50', 'ap75', 'ar100'] as const) {
      expect(Math.abs(got[key] - row[key]), `category ${row.category_id} ${key}: ${got[key]} vs ${row[key]}`).toBeLessThanOrEqual(1e-9);
    }
  }
  const t = expected.at_iou_50;
  expect(result.totals).toEqual({
    tp: t.n_tp,
    fp: t.n_fp,
    fn: t.n_fn,
    ignoredDetections: t.n_ignored_dt,
    notEvaluatedDetections: t.n_not_evaluated_dt,
  });
  const perImage = Object.fromEntries(images.map((im) => [String(im.imageId), { tp: im.tp, fp: im.fp, fn: im.fn }]));
  expect(perImage).toEqual(expected.per_image_at_iou_50);
}

const readExpected = (name: string) => JSON.parse(fs.readFileSync(path.join(REFERENCE, name), 'utf8')) as Expected;

describe.skipIf(!present)('generated COCOeval cases', () => {
  it('bbox, 500 images: every number and every image as pycocotools', () => {
    const gt = path.join(dir, 'gt.json');
    const preds = path.join(dir, 'preds.json');
    execFileSync(process.execPath, [path.join(SHARED, 'bench/gen-coco.mjs'), '--images', '500', '--seed', '11', '--out', gt], { stdio: 'ignore' });
    execFileSync('python3', [path.join(SHARED, 'bench/gen-preds.py'), gt, preds, '--seed', '5'], { stdio: 'ignore' });
    check(readExpected('expected-bbox-500.json'), fs.readFileSync(gt), fs.readFileSync(preds), 'bbox');
  });

  it('segm, 300 images: every number and every image as pycocotools', () => {
    const gunzip = (name: string) => zlib.gunzipSync(fs.readFileSync(path.join(REFERENCE, 'segm-300', name)));
    check(readExpected('expected-segm-300.json'), gunzip('gt-segm.json.gz'), gunzip('segm.json.gz'), 'segm');
  });
});
