import { A, AREA_ALL, AREA_RANGES, IOU_50, MATCH_THRESHOLDS, T } from './params.js';

/** Per detection and area range: bit t set = TP at IoU threshold t; bit IGNORED_SHIFT + t = ignored. */
export const IGNORED_SHIFT = 16;
const ALL_IGNORED = ((1 << T) - 1) << IGNORED_SHIFT;

/**
 * pycocotools' evaluateImg for one image and category, every area range and IoU threshold: detections
 * in score order take the free GT of highest IoU >= the threshold, non-ignored GTs first (a match on
 * one stops the search before the ignored ones); a crowd GT stays free; on equal IoU the later GT
 * wins because only a strictly lower IoU is skipped. A match with GT id 0 counts as no match where
 * pycocotools tests the stored id for non-zero, while the GT is still taken.
 *
 * Buffers are reused from group to group (tens of thousands of groups per evaluation): fill the
 * inputs for D kept detections (score order, at most 100) and G GTs (file order), call match(D, G),
 * read the outputs.
 */
export class GreedyMatcher {
  /** Inputs. IoUs row-major [d * G + g]. */
  ious = new Float64Array(0);
  gtIds = new Float64Array(0);
  gtAreas = new Float64Array(0);
  gtCrowd = new Uint8Array(0);
  dtAreas = new Float64Array(0);
  /** Outputs: flags [d * A + a] (see IGNORED_SHIFT). */
  flags = new Uint32Array(0);
  /** At IoU 0.50, area all: the GT each detection took (-1: none), the last detection each GT took. */
  dtGt = new Int32Array(0);
  gtDt = new Int32Array(0);
  /** GT ignore flags of area all. */
  gtIgnored = new Uint8Array(0);
  /** Non-ignored GTs per area range. */
  readonly gtCounted = new Int32Array(A);

  private rowMax = new Float64Array(0);
  private candidate = new Int32Array(0);
  private ignoredGt = new Uint8Array(0);
  private order = new Int32Array(0);
  /** taken[g] === pass: taken in the current (area, threshold) pass; saves clearing it 40 times. */
  private taken = new Uint32Array(0);
  private pass = 0;

  reserve(D: number, G: number): void {
    if (D * G > this.ious.length) this.ious = new Float64Array(Math.max(D * G, 2 * this.ious.length));
    if (D > this.dtAreas.length) {
      const n = Math.max(D, 2 * this.dtAreas.length);
      this.dtAreas = new Float64Array(n);
      this.flags = new Uint32Array(n * A);
      this.dtGt = new Int32Array(n);
      this.rowMax = new Float64Array(n);
      this.candidate = new Int32Array(n);
    }
    if (G > this.gtIds.length) {
      const n = Math.max(G, 2 * this.gtIds.length);
      this.gtIds = new Float64Array(n);
      this.gtAreas = new Float64Array(n);
      this.gtCrowd = new Uint8Array(n);
      this.gtDt = new Int32Array(n);
      this.gtIgnored = new Uint8Array(n);
      this.ignoredGt = new Uint8Array(n);
      this.order = new Int32Array(n);
      this.taken = new Uint32Array(n);
      this.pass = 0;
    }
  }

  match(D: number, G: number): void {
    const { ious, gtIds, gtAreas, gtCrowd, dtAreas, flags, ignoredGt, order, taken, rowMax, candidate } = this;
    flags.fill(0, 0, D * A);
    this.dtGt.fill(-1, 0, D);
    this.gtDt.fill(-1, 0, G);
    // A detection whose best IoU is under a threshold cannot match there: most detections (false
    // positives) are under the lowest one and skip the threshold loop altogether.
    let candidates = 0;
    for (let d = 0; d < D; d++) {
      let max = -Infinity;
      for (let g = 0; g < G; g++) {
        const iou = ious[d * G + g]!;
        if (iou > max) max = iou;
        else if (Number.isNaN(iou)) max = Infinity; // NaN passes pycocotools' `iou < best` test
      }
      rowMax[d] = max;
      if (max >= MATCH_THRESHOLDS[0]!) candidate[candidates++] = d;
    }
    for (let a = 0; a < A; a++) {
      const range = AREA_RANGES[a]!;
      const lo = range[0];
      const hi = range[1];
      let n = 0;
      for (let g = 0; g < G; g++) {
        const area = gtAreas[g]!;
        ignoredGt[g] = gtCrowd[g] || area < lo || area > hi ? 1 : 0;
        if (!ignoredGt[g]) order[n++] = g;
      }
      this.gtCounted[a] = n;
      // Stable: ignored GTs go last, each group in file order.
      for (let g = 0; g < G; g++) if (ignoredGt[g]) order[n++] = g;
      if (a === AREA_ALL) this.gtIgnored.set(ignoredGt.subarray(0, G));
      // Unmatched: ignored at every threshold when out of range, else a false positive.
      for (let d = 0; d < D; d++) {
        const area = dtAreas[d]!;
        if (area < lo || area > hi) flags[d * A + a] = ALL_IGNORED;
      }
      for (let t = 0; t < T; t++) {
        const pass = this.nextPass();
        const thr = MATCH_THRESHOLDS[t]!;
        const tpBit = 1 << t;
        const ignoredBit = 1 << (IGNORED_SHIFT + t);
        for (let c = 0; c < candidates; c++) {
          const d = candidate[c]!;
          if (rowMax[d]! < thr) continue;
          let best = thr;
          let m = -1;
          const row = d * G;
          for (let o = 0; o < G; o++) {
            const g = order[o]!;
            if (taken[g] === pass && !gtCrowd[g]) continue;
            if (m > -1 && !ignoredGt[m] && ignoredGt[g]) break;
            const iou = ious[row + g]!;
            // `<`, as pycocotools: equal IoU moves the match to the later GT (and NaN matches).
            if (iou < best) continue;
            best = iou;
            m = g;
          }
          if (m === -1) continue;
          taken[m] = pass;
          const area = dtAreas[d]!;
          const idZero = gtIds[m] === 0;
          const ignored = ignoredGt[m] === 1 || (idZero && (area < lo || area > hi));
          const f = d * A + a;
          // A match replaces the unmatched default of this threshold.
          let bits = flags[f]! & ~ignoredBit;
          if (ignored) bits |= ignoredBit;
          else if (!idZero) bits |= tpBit;
          flags[f] = bits;
          if (a === AREA_ALL && t === IOU_50) {
            this.dtGt[d] = m;
            this.gtDt[m] = d;
          }
        }
      }
    }
  }

  private nextPass(): number {
    if (this.pass === 0xffffffff) {
      this.taken.fill(0);
      this.pass = 0;
    }
    return ++this.pass;
  }
}
