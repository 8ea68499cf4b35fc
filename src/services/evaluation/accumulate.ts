import type { DetectionLog } from './detection-log.js';
import { IGNORED_SHIFT } from './greedy-match.js';
import { A, AREA_ALL, EPS, MAX_DETS, R, RECALL_THRESHOLDS, T } from './params.js';
import { ScoreRanker } from './score-order.js';

const M = MAX_DETS.length;
const M100 = M - 1;
const SMALLER_MAX_DET = MAX_DETS[M100 - 1]!;
/** TP bits of all thresholds; a TP bit is never set together with its ignored bit. */
const TP_BITS = (1 << T) - 1;

/** pycocotools' `eval` arrays, -1 where a category has no non-ignored GT. */
export interface Accumulated {
  categoryCount: number;
  /** Per area range (maxDets 100): [t][r][k] at (t * R + r) * K + k. */
  precision: Float64Array[];
  /** Area all, maxDets 100, laid out as precision. */
  scores: Float64Array;
  /** Per area range and maxDets (a * M + m): [t][k] at t * K + k. */
  recall: Float64Array[];
}

/** One category's evaluated detections in ranking order, in buffers sized for the largest category. */
class RankedCategory {
  n = 0;
  readonly score: Float64Array;
  readonly rank: Uint8Array;
  readonly flags: Uint32Array;
  /** Per TP (1-based, in ranking order): its precision, then the maximum from there on; its position. */
  readonly tpPrecision: Float64Array;
  readonly tpPosition: Uint32Array;
  private readonly appendOrder: Float64Array;
  private readonly order: Uint32Array;
  private readonly ranker: ScoreRanker;

  constructor(capacity: number) {
    this.score = new Float64Array(capacity);
    this.rank = new Uint8Array(capacity);
    this.flags = new Uint32Array(capacity * A);
    this.tpPrecision = new Float64Array(capacity + 1);
    this.tpPosition = new Uint32Array(capacity + 1);
    this.appendOrder = new Float64Array(capacity);
    this.order = new Uint32Array(capacity);
    this.ranker = new ScoreRanker(capacity);
  }

  /** `group`: the category's log positions in append (image) order, so ties go to the earlier image. */
  load(log: DetectionLog, group: Uint32Array): void {
    const { appendOrder, order, score, rank, flags } = this;
    const n = (this.n = group.length);
    log.readScores(group, appendOrder);
    this.ranker.order(appendOrder, n, order);
    log.readRanked(group, order, score, rank, flags);
  }

  /** TPs among each image's top 1 and top 10 (maxDets 1 and 10 only feed recall): [m * T + t]. */
  countTopTps(a: number, out: Float64Array): void {
    out.fill(0);
    for (let i = 0; i < this.n; i++) {
      const r = this.rank[i]!;
      if (r >= SMALLER_MAX_DET) continue;
      const tpBits = this.flags[i * A + a]! & TP_BITS;
      if (tpBits === 0) continue;
      for (let m = 0; m < M100; m++) {
        if (r >= MAX_DETS[m]!) continue;
        for (let t = 0; t < T; t++) if (tpBits & (1 << t)) out[m * T + t] = out[m * T + t]! + 1;
      }
    }
  }

  /**
   * Fills tpPrecision / tpPosition for threshold t and returns the TP count. Recall only grows at a
   * TP and precision only rises there (an FP lowers it, an ignored detection repeats it), so the
   * first rank reaching a recall threshold is a TP's, and the right-to-left running maximum is one
   * over TPs: only TPs need their precision computed.
   */
  tpCurve(a: number, t: number): number {
    const { flags, tpPrecision, tpPosition } = this;
    const tpBit = 1 << t;
    const ignoredBit = 1 << (IGNORED_SHIFT + t);
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < this.n; i++) {
      const f = flags[i * A + a]!;
      if (f & ignoredBit) continue;
      if (f & tpBit) {
        tp++;
        tpPrecision[tp] = tp / (fp + tp + EPS);
        tpPosition[tp] = i;
      } else fp++;
    }
    for (let c = tp - 1; c >= 1; c--) if (tpPrecision[c + 1]! > tpPrecision[c]!) tpPrecision[c] = tpPrecision[c + 1]!;
    return tp;
  }

  /**
   * searchsorted(recall, recThrs, 'left') with recall = TPs so far / npig: precision and score at the
   * first rank reaching each threshold, 0 past the last recall. Threshold 0 is rank 0, whose running
   * maximum is the best TP's precision.
   */
  readCurve(tp: number, npig: number, precision: Float64Array, scores: Float64Array | null, at: (r: number) => number): void {
    let c = 0;
    for (let r = 0; r < R; r++) {
      const thr = RECALL_THRESHOLDS[r]!;
      while (c <= tp && c / npig < thr) c++;
      const reached = c <= tp && this.n > 0;
      precision[at(r)] = !reached ? 0 : c === 0 ? (tp > 0 ? this.tpPrecision[1]! : 0) : this.tpPrecision[c]!;
      if (scores) scores[at(r)] = !reached ? 0 : this.score[c === 0 ? 0 : this.tpPosition[c]!]!;
    }
  }
}

/**
 * pycocotools' `accumulate`: per category, the evaluated detections of all images ranked by score
 * (stable: ties keep image order, then rank within the image), cumulative TP/FP per IoU threshold,
 * precision made non-increasing from the right and read at the first rank reaching each recall
 * threshold, together with that rank's score.
 */
export function accumulate(log: DetectionLog, gtCounted: Int32Array, K: number): Accumulated {
  const precision = Array.from({ length: A }, () => new Float64Array(T * R * K).fill(-1));
  const scores = new Float64Array(T * R * K).fill(-1);
  const recall = Array.from({ length: A * M }, () => new Float64Array(T * K).fill(-1));
  const [starts, positions] = log.byCategory(K);
  let largest = 0;
  for (let k = 0; k < K; k++) largest = Math.max(largest, starts[k + 1]! - starts[k]!);
  const ranked = new RankedCategory(largest);
  const topTps = new Float64Array(M100 * T);
  for (let k = 0; k < K; k++) {
    ranked.load(log, positions.subarray(starts[k]!, starts[k + 1]!));
    for (let a = 0; a < A; a++) {
      const npig = gtCounted[k * A + a]!;
      if (npig === 0) continue;
      ranked.countTopTps(a, topTps);
      for (let m = 0; m < M100; m++) {
        for (let t = 0; t < T; t++) recall[a * M + m]![t * K + k] = topTps[m * T + t]! / npig;
      }
      for (let t = 0; t < T; t++) {
        const tp = ranked.tpCurve(a, t);
        recall[a * M + M100]![t * K + k] = tp / npig;
        ranked.readCurve(tp, npig, precision[a]!, a === AREA_ALL ? scores : null, (r) => (t * R + r) * K + k);
      }
    }
  }
  return { categoryCount: K, precision, scores, recall };
}
