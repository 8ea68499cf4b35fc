import type { Accumulated } from './accumulate.js';
import { AREA_ALL, IOU_50, IOU_75, MAX_DETS, R, T } from './params.js';
import type { CategoryMetrics, CocoStats, PrCurve } from './types.js';

const M = MAX_DETS.length;
const M100 = M - 1;
const SMALL = 1;
const MEDIUM = 2;
const LARGE = 3;
const NUMPY_BUFFER = 8192;

/**
 * numpy's pairwise summation (what np.mean uses on a contiguous float64 array): plain sums under 8
 * values, 8 interleaved partial sums up to 128, halves (rounded down to a multiple of 8) above.
 */
function pairwiseSum(v: Float64Array, from: number, n: number): number {
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += v[from + i]!;
    return s;
  }
  if (n <= 128) {
    const r = v.slice(from, from + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = r[j]! + v[from + i + j]!;
    let s = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) s += v[from + i]!;
    return s;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(v, from, n2) + pairwiseSum(v, from + n2, n - n2);
}

/** np.mean(s[s > -1]) over values[start + i * stride], i < count; -1 when nothing is left. */
function meanOfValid(values: Float64Array, start: number, count: number, stride = 1): number {
  const kept = new Float64Array(count);
  const n = keepValid(values, start, count, stride, kept);
  if (n === 0) return -1;
  // numpy's buffered reduction hands the inner loop at most 8192 values at a time and adds the
  // blocks' pairwise sums one after the other.
  let sum = 0;
  for (let from = 0; from < n; from += NUMPY_BUFFER) sum += pairwiseSum(kept, from, Math.min(NUMPY_BUFFER, n - from));
  return sum / n;
}

/** Copies the values > -1 into `kept`, in order; returns how many. */
function keepValid(values: Float64Array, start: number, count: number, stride: number, kept: Float64Array): number {
  let n = 0;
  for (let i = 0; i < count; i++) {
    const x = values[start + i * stride]!;
    if (x > -1) kept[n++] = x;
  }
  return n;
}

/** summarize(): the 12 numbers, each mean taken in numpy's C order of the selected slice ([t][r][k]). */
export function summarizeStats(acc: Accumulated): CocoStats {
  const K = acc.categoryCount;
  const ap = (area: number, t?: number): number =>
    t === undefined ? meanOfValid(acc.precision[area]!, 0, T * R * K) : meanOfValid(acc.precision[area]!, t * R * K, R * K);
  const ar = (area: number, m: number): number => meanOfValid(acc.recall[area * M + m]!, 0, T * K);
  return {
    ap: ap(AREA_ALL),
    ap50: ap(AREA_ALL, IOU_50),
    ap75: ap(AREA_ALL, IOU_75),
    ap_small: ap(SMALL),
    ap_medium: ap(MEDIUM),
    ap_large: ap(LARGE),
    ar1: ar(AREA_ALL, 0),
    ar10: ar(AREA_ALL, 1),
    ar100: ar(AREA_ALL, M100),
    ar_small: ar(SMALL, M100),
    ar_medium: ar(MEDIUM, M100),
    ar_large: ar(LARGE, M100),
  };
}

/** Per category (area all, 100 detections): the same means restricted to one category (stride K). */
export function summarizeCategories(acc: Accumulated, categoryIds: readonly number[]): CategoryMetrics[] {
  const K = acc.categoryCount;
  const precision = acc.precision[AREA_ALL]!;
  const recall = acc.recall[AREA_ALL * M + M100]!;
  return categoryIds.map((categoryId, k) => ({
    categoryId,
    ap: meanOfValid(precision, k, T * R, K),
    ap50: meanOfValid(precision, IOU_50 * R * K + k, R, K),
    ap75: meanOfValid(precision, IOU_75 * R * K + k, R, K),
    ar100: meanOfValid(recall, k, T, K),
  }));
}

/** Precision and score at each recall threshold, per category and IoU threshold. */
export function prCurves(acc: Accumulated, categoryIds: readonly number[]): PrCurve[] {
  const K = acc.categoryCount;
  const precision = acc.precision[AREA_ALL]!;
  const read = (v: Float64Array, k: number): number[][] => {
    const rows: number[][] = [];
    for (let t = 0; t < T; t++) {
      const row = new Array<number>(R);
      for (let r = 0; r < R; r++) row[r] = v[(t * R + r) * K + k]!;
      rows.push(row);
    }
    return rows;
  };
  return categoryIds.map((categoryId, k) => ({ categoryId, precision: read(precision, k), scores: read(acc.scores, k) }));
}
