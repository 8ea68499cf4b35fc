/** COCOeval's default detection parameters, built the way numpy builds them. */

/** np.linspace(start, stop, num): i * step + start, the last value set to stop. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** 0.5 … 0.95; the ninth is 0.8999999999999999, not 0.9. */
export const IOU_THRESHOLDS: readonly number[] = linspace(0.5, 0.95, 10);
/** 0 … 1 by i * 0.01 (0.35000000000000003, not 0.35). */
export const RECALL_THRESHOLDS: readonly number[] = linspace(0, 1, 101);
/** A match needs iou >= min(t, 1 - 1e-10). */
export const MATCH_THRESHOLDS: Float64Array = Float64Array.from(IOU_THRESHOLDS, (t) => Math.min(t, 1 - 1e-10));

export const T = IOU_THRESHOLDS.length;
export const R = RECALL_THRESHOLDS.length;
export const IOU_50 = 0;
export const IOU_75 = 5;

/** Both ends inclusive; 'all' is [0, 1e10], so a larger area is out of every range. */
export const AREA_RANGES: readonly (readonly [number, number])[] = [
  [0, 1e10],
  [0, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e10],
];
export const A = AREA_RANGES.length;
export const AREA_ALL = 0;

/** Detections kept per image *and category*; AR1/AR10 take the first 1/10 of the same ranking. */
export const MAX_DETS: readonly number[] = [1, 10, 100];
export const MAX_DET = 100;

/** np.spacing(1): added to tp + fp in precision. */
export const EPS = 2.220446049250313e-16;
