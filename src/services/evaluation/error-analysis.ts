import type { IouMatrix } from './iou-matrix.js';
import type {
  ConfusionMatrix,
  DetectionOutcome,
  ErrorKind,
  EvalDetection,
  EvalGroundTruth,
  FalsePositiveKind,
  GroundTruthOutcome,
} from './types.js';

const FOREGROUND = 0.5;
const BACKGROUND = 0.1;

/**
 * Beyond pycocotools: TIDE's kind of every false positive and a confusion matrix, both at IoU 0.50
 * (area all, 100 detections). It reads each image's finished outcome and writes only the outcomes'
 * `error` and its own counters, so it cannot change a COCOeval number.
 *
 * Kinds are tested in TIDE's order, the first that applies wins: localization (best same-class IoU
 * in [0.1, 0.5)), classification (another class's GT at IoU >= 0.5), duplicate (same-class IoU
 * >= 0.5: that GT was taken by a higher-scoring detection, or is GT id 0), background (every IoU
 * < 0.1), both (another class's GT in [0.1, 0.5)). Only non-ignored GTs count: crowd regions are
 * TIDE's ignore regions, not objects one can confuse.
 */
export class ErrorAnalysis {
  /** (K + 1) x (K + 1), row-major: row = GT category, column = predicted, index K = background. */
  private readonly confusion: Float64Array;
  private readonly counts: Record<ErrorKind, number> = {
    classification: 0,
    localization: 0,
    both: 0,
    duplicate: 0,
    background: 0,
    missed: 0,
  };

  constructor(
    private readonly categoryIds: readonly number[],
    private readonly iou: IouMatrix,
  ) {
    this.confusion = new Float64Array((categoryIds.length + 1) ** 2);
  }

  /** Categories are indices into `categoryIds` (-1: not evaluated); outcomes align with the inputs. */
  addImage(
    gts: readonly EvalGroundTruth[],
    dts: readonly EvalDetection[],
    gtCategory: Int32Array,
    dtCategory: Int32Array,
    gtOutcomes: readonly (GroundTruthOutcome | null)[],
    dtOutcomes: readonly DetectionOutcome[],
  ): void {
    const K = this.categoryIds.length;
    const counted: number[] = [];
    gtOutcomes.forEach((o, g) => {
      if (!o || o.ignored) return;
      counted.push(g);
      if (o.missed) {
        this.counts.missed++;
        this.bump(gtCategory[g]!, K);
      }
    });
    const fps: number[] = [];
    dtOutcomes.forEach((o, d) => {
      if (!o.evaluated) return;
      if (o.tp) this.bump(dtCategory[d]!, dtCategory[d]!);
      else if (!o.ignored) fps.push(d);
    });
    if (fps.length === 0) return;
    const G = counted.length;
    const ious =
      G > 0
        ? this.iou.compute(
            fps.map((d) => dts[d]!),
            counted.map((g) => gts[g]!),
            new Uint8Array(G),
          )
        : new Float64Array(0);
    fps.forEach((d, row) => {
      const category = dtCategory[d]!;
      let same = 0;
      let other = 0;
      let otherCategory = -1;
      for (let c = 0; c < G; c++) {
        const v = ious[row * G + c]!;
        const gtCat = gtCategory[counted[c]!]!;
        if (gtCat === category) same = Math.max(same, v);
        else if (v > other) {
          other = v;
          otherCategory = gtCat;
        }
      }
      const kind: FalsePositiveKind =
        same >= BACKGROUND && same < FOREGROUND
          ? 'localization'
          : other >= FOREGROUND
            ? 'classification'
            : same >= FOREGROUND
              ? 'duplicate'
              : other < BACKGROUND
                ? 'background'
                : 'both';
      dtOutcomes[d]!.error = kind;
      this.counts[kind]++;
      this.bump(kind === 'classification' ? otherCategory : K, category);
    });
  }

  result(): { confusion: ConfusionMatrix; errors: Record<ErrorKind, number> } {
    const n = this.categoryIds.length + 1;
    const matrix = Array.from({ length: n }, (_, row) => Array.from(this.confusion.subarray(row * n, (row + 1) * n)));
    return { confusion: { categoryIds: [...this.categoryIds], matrix }, errors: { ...this.counts } };
  }

  private bump(gtRow: number, predictedColumn: number): void {
    const at = gtRow * (this.categoryIds.length + 1) + predictedColumn;
    this.confusion[at] = this.confusion[at]! + 1;
  }
}
