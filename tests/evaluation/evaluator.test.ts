import { describe, expect, it } from 'vitest';
import {
  CocoEvaluator,
  detectionFromCoco,
  groundTruthFromCoco,
  RECALL_THRESHOLDS,
  resultAreaSource,
  type EvalDetection,
  type EvalGroundTruth,
} from '../../dist/services/evaluation/index.js';
import { rleArea, rleDecode } from '../../dist/services/evaluation/mask.js';

const A = 1;
const B = 2;
const gt = (id: number, categoryId: number, bbox: number[], extra: Partial<EvalGroundTruth> = {}): EvalGroundTruth => ({
  id,
  categoryId,
  bbox,
  area: bbox[2]! * bbox[3]!,
  iscrowd: 0,
  ...extra,
});
const dt = (index: number, categoryId: number, score: number, bbox: number[]): EvalDetection => ({
  index,
  categoryId,
  score,
  bbox,
  area: bbox[2]! * bbox[3]!,
});

/** One image with a TP of each class and one false positive of each TIDE kind. */
const SCENE_GTS = [
  gt(10, A, [0, 0, 10, 10]),
  gt(11, A, [50, 0, 10, 10]),
  gt(12, A, [0, 50, 10, 10]),
  gt(20, B, [100, 100, 10, 10]),
  gt(21, B, [150, 150, 10, 10]),
];
const SCENE_DTS = [
  dt(0, A, 0.9, [0, 0, 10, 10]), // TP on 10
  dt(1, A, 0.8, [0, 0, 10, 10]), // 10 already taken: duplicate
  dt(2, A, 0.7, [50, 0, 10, 3]), // IoU 0.3 with 11: localization
  dt(3, B, 0.6, [0, 50, 10, 10]), // on A's 12: classification
  dt(4, B, 0.5, [50, 0, 10, 3]), // IoU 0.3 with A's 11: both
  dt(5, A, 0.4, [200, 200, 10, 10]), // nothing near: background
  dt(6, B, 0.3, [100, 100, 10, 10]), // TP on 20
];

describe('CocoEvaluator streaming', () => {
  it('takes images in strictly ascending id order only, and nothing after finish()', () => {
    const ev = new CocoEvaluator({ iouType: 'bbox', categoryIds: [A] });
    ev.addImage(5, [], []);
    expect(() => ev.addImage(3, [], [])).toThrow(/ascending/);
    expect(() => ev.addImage(5, [], [])).toThrow(/ascending/);
    ev.addImage(6, [], []);
    ev.finish();
    expect(() => ev.addImage(7, [], [])).toThrow(/after finish/);
    expect(() => ev.finish()).toThrow(/twice/);
  });

  it('gives the same outcome whatever order an image’s detections come in (file index breaks ties)', () => {
    const run = (dts: EvalDetection[]) => new CocoEvaluator({ iouType: 'bbox', categoryIds: [A, B] }).addImage(1, SCENE_GTS, dts);
    const tied = SCENE_DTS.map((d) => ({ ...d, score: 0.5 }));
    const forward = run(tied);
    const backward = run([...tied].reverse());
    const byIndex = (o: ReturnType<typeof run>) => [...o.detections].sort((x, y) => x.index - y.index);
    expect(byIndex(backward)).toEqual(byIndex(forward));
    expect(backward.groundTruths).toEqual(forward.groundTruths);
  });

  it('classifies every false positive and missed GT, and fills the confusion matrix', () => {
    const ev = new CocoEvaluator({ iouType: 'bbox', categoryIds: [B, A] });
    const image = ev.addImage(1, SCENE_GTS, SCENE_DTS);
    expect(image.detections.map((d) => [d.index, d.tp, d.error])).toEqual([
      [0, true, null],
      [1, false, 'duplicate'],
      [2, false, 'localization'],
      [3, false, 'classification'],
      [4, false, 'both'],
      [5, false, 'background'],
      [6, true, null],
    ]);
    expect(image.detections.map((d) => d.iou)).toEqual([1, 1, 0.3, 0, 0, 0, 1]);
    expect(image.groundTruths.filter((g) => g.missed).map((g) => g.id)).toEqual([11, 12, 21]);
    expect([image.tp, image.fp, image.fn]).toEqual([2, 5, 3]);
    const result = ev.finish();
    expect(result.errors).toEqual({ classification: 1, localization: 1, both: 1, duplicate: 1, background: 1, missed: 3 });
    // Categories sorted as pycocotools sorts them; rows GT, columns predicted, background last.
    expect(result.confusion).toEqual({
      categoryIds: [A, B],
      matrix: [
        [1, 1, 2],
        [0, 1, 1],
        [3, 1, 0],
      ],
    });
  });

  it('never evaluates a category outside the GT categories', () => {
    const ev = new CocoEvaluator({ iouType: 'bbox', categoryIds: [A] });
    const image = ev.addImage(1, [gt(1, A, [0, 0, 10, 10]), gt(2, 99, [0, 0, 10, 10])], [dt(0, 99, 0.9, [0, 0, 10, 10])]);
    expect(image.detections[0]).toMatchObject({ evaluated: false, tp: false, error: null, iou: null });
    expect(image.groundTruths.map((g) => g.id)).toEqual([1]);
    expect([image.tp, image.fp, image.fn]).toEqual([0, 0, 1]);
    const result = ev.finish();
    expect(result.totals.notEvaluatedDetections).toBe(1);
    expect(result.stats.ap).toBe(0);
    expect(result.confusion.matrix).toEqual([
      [0, 1],
      [0, 0],
    ]);
  });

  it('ignores a GT’s `ignore` flag, as pycocotools overwrites it with iscrowd', () => {
    const outcome = (ignore: number) =>
      new CocoEvaluator({ iouType: 'bbox', categoryIds: [A] }).addImage(1, [gt(1, A, [0, 0, 10, 10], { ignore })], [dt(0, A, 0.9, [0, 0, 10, 10])]);
    expect(outcome(1)).toEqual(outcome(0));
    expect(outcome(1).tp).toBe(1);
  });

  it('gives -1 without GT and 0 for a category whose GTs are all missed', () => {
    expect(new CocoEvaluator({ iouType: 'bbox', categoryIds: [A] }).finish().stats.ap).toBe(-1);
    const ev = new CocoEvaluator({ iouType: 'bbox', categoryIds: [A, B] });
    ev.addImage(1, [gt(1, A, [0, 0, 10, 10])], [dt(0, B, 0.9, [0, 0, 10, 10])]);
    const { stats, perCategory } = ev.finish();
    expect([stats.ap, stats.ar100]).toEqual([0, 0]);
    expect(perCategory).toEqual([
      { categoryId: A, ap: 0, ap50: 0, ap75: 0, ar100: 0 },
      { categoryId: B, ap: -1, ap50: -1, ap75: -1, ar100: -1 },
    ]);
  });

  it('gives precision-recall curves with the score reached at each recall threshold', () => {
    // Two GTs; ranked detections TP (0.9), FP (0.8), TP (0.7) on two images.
    const ev = new CocoEvaluator({ iouType: 'bbox', categoryIds: [A] });
    ev.addImage(1, [gt(1, A, [0, 0, 10, 10])], [dt(0, A, 0.9, [0, 0, 10, 10]), dt(1, A, 0.8, [50, 50, 10, 10])]);
    ev.addImage(2, [gt(2, A, [0, 0, 10, 10])], [dt(2, A, 0.7, [0, 0, 10, 10])]);
    const { prCurves, perCategory } = ev.finish();
    const curve = prCurves[0]!;
    // precision = tp / (tp + fp + np.spacing(1)): a perfect start is 0.9999999999999998.
    const spacing = 2 ** -52;
    const one = 1 / (1 + 0 + spacing);
    const twoOfThree = 2 / (2 + 1 + spacing);
    RECALL_THRESHOLDS.forEach((recall, r) => {
      // Recall 0.5 is reached at rank 1, anything above at rank 3 (2 of 3).
      expect(curve.precision[0]![r], `recall ${recall}`).toBe(recall <= 0.5 ? one : twoOfThree);
      expect(curve.scores[0]![r], `recall ${recall}`).toBe(recall <= 0.5 ? 0.9 : 0.7);
    });
    expect(perCategory[0]!.ap50).toBeCloseTo((51 * one + 50 * twoOfThree) / 101, 15);
  });
});

describe('COCO inputs as loadRes and annToRLE leave them', () => {
  const image = { height: 40, width: 50 };

  it('takes every result area from its box when the first result has one, even for segm', () => {
    const first = { category_id: A, score: 0.9, bbox: [0, 0, 4, 5], segmentation: [[0, 0, 20, 0, 20, 20, 0, 20]] };
    expect(resultAreaSource(first)).toBe('bbox');
    const d = detectionFromCoco(first, 0, 'segm', 'bbox', image);
    expect(d.area).toBe(20);
    expect(rleArea(d.rle!)).toBe(400);
    // Without a mask, the box is the mask.
    const boxOnly = detectionFromCoco({ category_id: A, score: 0.5, bbox: [10, 10, 5, 6] }, 1, 'segm', 'bbox', image);
    expect(rleArea(boxOnly.rle!)).toBe(30);
    expect(() => detectionFromCoco({ category_id: A, score: 0.5, segmentation: [[0, 0, 9, 0, 9, 9]] }, 2, 'segm', 'bbox', image)).toThrow(
      /result #2 has no/,
    );
  });

  it('takes area and box from the mask when the first result has no box', () => {
    const first = { category_id: A, score: 0.9, segmentation: { size: [40, 50], counts: [45, 5, 1150] } };
    expect(resultAreaSource(first)).toBe('mask');
    const d = detectionFromCoco(first, 0, 'bbox', 'mask', image);
    // Pixels 45..49 of the column-major mask: column 1, rows 5..9.
    expect([d.area, d.bbox]).toEqual([5, [1, 5, 1, 5]]);
  });

  it('turns GT polygons, counts lists and strings into masks at the image size', () => {
    const poly = groundTruthFromCoco({ id: 1, category_id: A, area: 7, bbox: [2, 3, 4, 5], segmentation: [[2, 3, 6, 3, 6, 8, 2, 8]] }, 'segm', image);
    expect(poly.area).toBe(7); // the annotation's own field, not the mask's
    expect(rleDecode(poly.rle!).reduce((a, b) => a + b, 0)).toBe(20);
    const counts = groundTruthFromCoco({ id: 2, category_id: A, area: 5, iscrowd: 1, segmentation: { size: [40, 50], counts: [45, 5, 1950] } }, 'segm', image);
    expect([rleArea(counts.rle!), counts.bbox]).toEqual([5, [1, 5, 1, 5]]);
    expect(() => groundTruthFromCoco({ id: 3, category_id: A, area: 5, bbox: [0, 0, 1, 1] }, 'segm', image)).toThrow(/segmentation/);
    expect(() => new CocoEvaluator({ iouType: 'segm', categoryIds: [A] }).addImage(1, [gt(4, A, [0, 0, 1, 1])], [dt(0, A, 1, [0, 0, 1, 1])])).toThrow(
      /needs a mask/,
    );
  });
});
