/** numpy's argsort of -score: higher scores first, NaN last; 0 on ties (callers break them). */
export function byScoreDescending(a: number, b: number): number {
  if (a === b) return 0;
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a > b ? -1 : 1;
}

/**
 * numpy's stable argsort of -scores (ties keep position order) for up to `capacity` scores: the
 * distinct values are sorted natively, then a counting sort by value rank keeps ties in order. A
 * comparator sort would call back into JS for each of ~n log n comparisons. (One loop per helper
 * function: V8 then optimizes each loop with complete type feedback instead of deoptimizing a big
 * function on its first run.)
 */
export class ScoreRanker {
  private readonly keys: Float64Array;
  private readonly distinct: Float64Array;
  private readonly rankOf: Uint32Array;
  private readonly counts: Uint32Array;

  constructor(capacity: number) {
    this.keys = new Float64Array(capacity);
    this.distinct = new Float64Array(capacity);
    this.rankOf = new Uint32Array(capacity);
    this.counts = new Uint32Array(capacity + 2);
  }

  /** Writes positions 0..n-1 of `scores` into `out`, highest score first. */
  order(scores: Float64Array, n: number, out: Uint32Array): void {
    const { keys, distinct, rankOf, counts } = this;
    negate(scores, n, keys);
    const sorted = distinct.subarray(0, n);
    sorted.set(keys.subarray(0, n));
    sorted.sort(); // ascending, NaN last
    const d = compactDistinct(sorted, n);
    counts.fill(0, 0, d + 2);
    rankAll(keys, n, distinct, d, rankOf, counts);
    prefixSums(counts, d + 1);
    placeByRank(rankOf, n, counts, out);
  }
}

function negate(scores: Float64Array, n: number, out: Float64Array): void {
  for (let i = 0; i < n; i++) out[i] = -scores[i]!;
}

/** Moves the distinct non-NaN values of ascending `sorted` to its front; returns how many. */
function compactDistinct(sorted: Float64Array, n: number): number {
  let d = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i]!;
    if (Number.isNaN(v)) break;
    // -0 and 0 are one value: numpy compares them equal.
    if (d === 0 || v !== sorted[d - 1]) sorted[d++] = v;
  }
  return d;
}

/** Each key's index among the d distinct values (NaN: d), counted into counts[rank + 1]. */
function rankAll(keys: Float64Array, n: number, distinct: Float64Array, d: number, rankOf: Uint32Array, counts: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const r = rankOfKey(keys[i]!, distinct, d);
    rankOf[i] = r;
    counts[r + 1] = counts[r + 1]! + 1;
  }
}

function rankOfKey(key: number, distinct: Float64Array, d: number): number {
  if (Number.isNaN(key)) return d;
  let lo = 0;
  let hi = d - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (distinct[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function prefixSums(counts: Uint32Array, upTo: number): void {
  for (let r = 0; r < upTo; r++) counts[r + 1] = counts[r + 1]! + counts[r]!;
}

/** Counting sort: counts[r] is where the next position of rank r goes. */
function placeByRank(rankOf: Uint32Array, n: number, counts: Uint32Array, out: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const r = rankOf[i]!;
    out[counts[r]!] = i;
    counts[r] = counts[r]! + 1;
  }
}
