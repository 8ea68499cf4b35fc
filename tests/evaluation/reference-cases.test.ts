import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  evaluateCoco,
  type CocoGroundTruthFile,
  type CocoResult,
  type ImageOutcome,
} from '../../dist/services/evaluation/index.js';

const CASES = path.resolve(import.meta.dirname, '../fixtures/eval-reference/cases');
const TOLERANCE = 1e-9;

interface Expected {
  iou_type: 'bbox' | 'segm';
  metrics: Record<string, number>;
  per_category: { category_id: number; ap: number; ap50: number; ap75: number; ar100: number }[];
  at_iou_50: { n_tp: number; n_fp: number; n_fn: number; n_ignored_dt: number; n_not_evaluated_dt: number };
  matching: {
    detections: { index: number; evaluated: boolean; gt_id: number | null; tp: boolean; ignored: boolean }[];
    ground_truth: { gt_id: number; ignored: boolean; dt_id: number | null }[];
    per_image: Record<string, { tp: number; fp: number; fn: number; ignored_dt: number; n_gt: number; n_dt: number }>;
  };
}

const readJson = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));

function run(name: string) {
  const dir = path.join(CASES, name);
  const expected = readJson(path.join(dir, 'expected.json')) as Expected;
  const images: ImageOutcome[] = [];
  const gt = readJson(path.join(dir, 'gt.json')) as CocoGroundTruthFile;
  const results = readJson(path.join(dir, 'results.json')) as (CocoResult & { image_id: number })[];
  const result = evaluateCoco(gt, results, {
    iouType: expected.iou_type,
    onImage: (o) => images.push(o),
  });
  return { expected, result, images };
}

describe.each(fs.readdirSync(CASES).sort())('COCOeval reference case %s', (name) => {
  const { expected, result, images } = run(name);

  it('gives the 12 summary metrics', () => {
    for (const [key, value] of Object.entries(expected.metrics)) {
      const got = result.stats[key as keyof typeof result.stats];
      expect(Math.abs(got - value), `${key}: ${got} vs ${value}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('gives every per-category row', () => {
    expect(result.perCategory.map((c) => c.categoryId)).toEqual(expected.per_category.map((c) => c.category_id));
    for (const row of expected.per_category) {
      const got = result.perCategory.find((c) => c.categoryId === row.category_id)!;
      for (const key of ['ap', 'ap50', 'ap75', 'ar100'] as const) {
        expect(Math.abs(got[key] - row[key]), `category ${row.category_id} ${key}: ${got[key]} vs ${row[key]}`).toBeLessThanOrEqual(TOLERANCE);
      }
    }
  });

  it('matches every detection as pycocotools does at IoU 0.50', () => {
    const got = new Map(images.flatMap((im) => im.detections).map((d) => [d.index, d]));
    expect(got.size).toBe(expected.matching.detections.length);
    for (const want of expected.matching.detections) {
      const d = got.get(want.index)!;
      expect({ index: d.index, evaluated: d.evaluated, gt_id: d.gtId, tp: d.tp, ignored: d.ignored }).toEqual({
        index: want.index,
        evaluated: want.evaluated,
        gt_id: want.gt_id,
        tp: want.tp,
        ignored: want.ignored,
      });
    }
  });

  it('records which detection took each GT', () => {
    const got = new Map(images.flatMap((im) => im.groundTruths).map((g) => [g.id, g]));
    expect(got.size).toBe(expected.matching.ground_truth.length);
    for (const want of expected.matching.ground_truth) {
      const g = got.get(want.gt_id)!;
      // pycocotools numbers results from 1 in file order: dt_id = index + 1.
      expect({ id: g.id, taker: g.matchedDetectionIndex, ignored: g.ignored }).toEqual({
        id: want.gt_id,
        taker: want.dt_id === null ? null : want.dt_id - 1,
        ignored: want.ignored,
      });
      expect(g.missed).toBe(!want.ignored && want.dt_id === null);
    }
  });

  it('counts tp, fp and fn per image and in total', () => {
    const perImage = Object.fromEntries(
      images.map((im) => [
        String(im.imageId),
        {
          tp: im.tp,
          fp: im.fp,
          fn: im.fn,
          ignored_dt: im.ignoredDetections,
          n_gt: im.groundTruths.length,
          n_dt: im.detections.filter((d) => d.evaluated).length,
        },
      ]),
    );
    expect(perImage).toEqual(expected.matching.per_image);
    const t = expected.at_iou_50;
    expect(result.totals).toEqual({
      tp: t.n_tp,
      fp: t.n_fp,
      fn: t.n_fn,
      ignoredDetections: t.n_ignored_dt,
      notEvaluatedDetections: t.n_not_evaluated_dt,
    });
  });
});
