import type { Rle } from './mask.js';

export type IouType = 'bbox' | 'segm';

/** One GT annotation of the image being added, in GT-file order (ties between GTs go to the later one). */
export interface EvalGroundTruth {
  id: number;
  categoryId: number;
  /** [x, y, w, h]; the IoU of bbox evaluation. */
  bbox: readonly number[];
  /** The annotation's `area` field: the only thing area ranges look at. */
  area: number;
  iscrowd: boolean | number;
  /**
   * Accepted because COCO files carry it, and deliberately without effect: pycocotools' `_prepare`
   * overwrites `ignore` with `iscrowd` before evaluating.
   */
  ignore?: boolean | number;
  /** Required for segm evaluation. */
  rle?: Rle;
}

/** One result of the image being added; any order (file order is recovered from `index`). */
export interface EvalDetection {
  /** Position in the results file, 0-based: breaks score ties, as pycocotools' stable sort does. */
  index: number;
  categoryId: number;
  score: number;
  bbox: readonly number[];
  /** As loadRes sets it: box w·h or mask pixels (see detectionFromCoco). */
  area: number;
  /** Required for segm evaluation. */
  rle?: Rle;
}

/** Why a false positive at IoU 0.5 is one (TIDE's error kinds). */
export type FalsePositiveKind = 'classification' | 'localization' | 'both' | 'duplicate' | 'background';
export type ErrorKind = FalsePositiveKind | 'missed';

/** A detection's state at IoU 0.50, area all, 100 detections: pycocotools' `evaluate()` for that setting. */
export interface DetectionOutcome {
  index: number;
  /** False when cut by the top 100 of its image and category, or of a category not evaluated. */
  evaluated: boolean;
  tp: boolean;
  /** Matched a crowd region (or an ignored GT): neither TP nor FP. */
  ignored: boolean;
  /** The GT it took; null when none, and for GT id 0 (pycocotools then counts the detection as FP). */
  gtId: number | null;
  /**
   * IoU with the GT it took (crowd: intersection over detection area); otherwise its best IoU with a
   * GT of its category on the image, 0 when there is none; null when not evaluated.
   */
  iou: number | null;
  /** Set for every false positive. */
  error: FalsePositiveKind | null;
}

export interface GroundTruthOutcome {
  id: number;
  /** The detection that took it (for a crowd region, the last of those it absorbed). */
  matchedDetectionIndex: number | null;
  /** Crowd (or area out of [0, 1e10]): never a false negative. */
  ignored: boolean;
  /** Unmatched and not ignored: a false negative. */
  missed: boolean;
}

/** What `addImage` returns, for the caller to store as it streams. */
export interface ImageOutcome {
  imageId: number;
  tp: number;
  fp: number;
  fn: number;
  ignoredDetections: number;
  /** In the order they were given; GTs of categories not evaluated are left out. */
  detections: DetectionOutcome[];
  groundTruths: GroundTruthOutcome[];
}

export interface CocoStats {
  ap: number;
  ap50: number;
  ap75: number;
  ap_small: number;
  ap_medium: number;
  ap_large: number;
  ar1: number;
  ar10: number;
  ar100: number;
  ar_small: number;
  ar_medium: number;
  ar_large: number;
}

export interface CategoryMetrics {
  categoryId: number;
  /** Mean precision over the 10 IoU and 101 recall thresholds (area all, 100 detections); -1 without non-crowd GT. */
  ap: number;
  ap50: number;
  ap75: number;
  ar100: number;
}

/** pycocotools' `accumulate` for one category, area all, 100 detections: [iouIndex][recallIndex]. */
export interface PrCurve {
  categoryId: number;
  /** Interpolated precision at each recall threshold; -1 without non-crowd GT. */
  precision: number[][];
  /** Score of the detection where each recall threshold is reached (0 past the last recall). */
  scores: number[][];
}

/**
 * Rows: GT category (in `categoryIds` order) then background; columns: predicted category then
 * background. Diagonal: TPs; off-diagonal: false positives of the column's class on a GT of the row's
 * class; background row: other false positives; background column: missed GTs.
 */
export interface ConfusionMatrix {
  categoryIds: number[];
  matrix: number[][];
}

export interface Totals {
  tp: number;
  fp: number;
  fn: number;
  ignoredDetections: number;
  notEvaluatedDetections: number;
}

export interface EvaluationResult {
  stats: CocoStats;
  perCategory: CategoryMetrics[];
  iouThresholds: number[];
  recallThresholds: number[];
  prCurves: PrCurve[];
  /** At IoU 0.50, area all, 100 detections. */
  totals: Totals;
  confusion: ConfusionMatrix;
  errors: Record<ErrorKind, number>;
}
