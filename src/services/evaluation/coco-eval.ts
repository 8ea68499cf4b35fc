import { accumulate } from './accumulate.js';
import { compareDetections, orderByCategory } from './category-order.js';
import { DetectionLog } from './detection-log.js';
import { ErrorAnalysis } from './error-analysis.js';
import { GreedyMatcher, IGNORED_SHIFT } from './greedy-match.js';
import { IouMatrix } from './iou-matrix.js';
import { A, AREA_ALL, IOU_50, IOU_THRESHOLDS, MAX_DET, RECALL_THRESHOLDS } from './params.js';
import { prCurves, summarizeCategories, summarizeStats } from './summarize.js';
import type {
  DetectionOutcome,
  EvalDetection,
  EvalGroundTruth,
  EvaluationResult,
  GroundTruthOutcome,
  ImageOutcome,
  IouType,
  Totals,
} from './types.js';

export interface CocoEvaluatorOptions {
  iouType: IouType;
  /** The GT file's category ids; detections of any other category are never evaluated. */
  categoryIds: readonly number[];
}

/**
 * pycocotools' COCOeval (evaluate + accumulate + summarize) fed one image at a time, in ascending
 * image id order. Only compact per-detection state is kept between images (see DetectionLog), so
 * memory grows by ~29 bytes per evaluated detection whatever the masks or boxes weighed.
 */
export class CocoEvaluator {
  /** Ascending, as pycocotools sorts them: the order of every mean over categories. */
  private readonly categoryIds: number[];
  private readonly categoryIndex: Map<number, number>;
  private readonly log = new DetectionLog();
  private readonly matcher = new GreedyMatcher();
  private readonly iou: IouMatrix;
  /** Non-ignored GTs per category and area range: [k * A + a]. */
  private readonly gtCounted: Int32Array;
  private readonly errorAnalysis: ErrorAnalysis;
  private readonly totals: Totals = { tp: 0, fp: 0, fn: 0, ignoredDetections: 0, notEvaluatedDetections: 0 };
  private lastImageId = -Infinity;
  private finished = false;

  constructor(options: CocoEvaluatorOptions) {
    this.categoryIds = [...new Set(options.categoryIds)].sort((a, b) => a - b);
    this.categoryIndex = new Map(this.categoryIds.map((id, k) => [id, k]));
    this.gtCounted = new Int32Array(this.categoryIds.length * A);
    this.iou = new IouMatrix(options.iouType);
    this.errorAnalysis = new ErrorAnalysis(this.categoryIds, this.iou);
  }

  /**
   * Evaluates one image: its GTs in GT-file order and its detections (any order). Images with neither
   * can be skipped; images with detections but no GT must be added (their detections are FPs).
   */
  addImage(imageId: number, gts: readonly EvalGroundTruth[], dts: readonly EvalDetection[]): ImageOutcome {
    if (this.finished) throw new Error('CocoEvaluator: addImage after finish()');
    if (!Number.isFinite(imageId) || !(imageId > this.lastImageId)) {
      throw new Error(`CocoEvaluator: image ids must be added in strictly ascending order (got ${imageId} after ${this.lastImageId})`);
    }
    this.lastImageId = imageId;
    const gtCategory = this.categoriesOf(gts);
    const dtCategory = this.categoriesOf(dts);
    // Group by category: GTs keep file order, detections go to score order.
    const gtOrder = orderByCategory(gtCategory, (a, b) => a - b);
    const dtOrder = orderByCategory(dtCategory, (a, b) => compareDetections(dts[a]!, dts[b]!));

    const detections: DetectionOutcome[] = new Array(dts.length);
    for (let d = 0; d < dts.length; d++) {
      detections[d] = { index: dts[d]!.index, evaluated: false, tp: false, ignored: false, gtId: null, iou: null, error: null };
    }
    const gtOutcomes: (GroundTruthOutcome | null)[] = new Array(gts.length).fill(null);
    let i = 0;
    let j = 0;
    while (i < dtOrder.length || j < gtOrder.length) {
      const k = Math.min(
        i < dtOrder.length ? dtCategory[dtOrder[i]!]! : Infinity,
        j < gtOrder.length ? gtCategory[gtOrder[j]!]! : Infinity,
      );
      const kept: EvalDetection[] = [];
      const keptOutcomes: DetectionOutcome[] = [];
      for (; i < dtOrder.length && dtCategory[dtOrder[i]!] === k; i++) {
        if (kept.length === MAX_DET) continue;
        kept.push(dts[dtOrder[i]!]!);
        keptOutcomes.push(detections[dtOrder[i]!]!);
      }
      const groupGts: EvalGroundTruth[] = [];
      const groupPositions: number[] = [];
      for (; j < gtOrder.length && gtCategory[gtOrder[j]!] === k; j++) {
        groupGts.push(gts[gtOrder[j]!]!);
        groupPositions.push(gtOrder[j]!);
      }
      this.evaluateGroup(k, kept, keptOutcomes, groupGts, groupPositions, gtOutcomes);
    }

    const outcome: ImageOutcome = { imageId, tp: 0, fp: 0, fn: 0, ignoredDetections: 0, detections, groundTruths: [] };
    for (const d of detections) {
      if (!d.evaluated) this.totals.notEvaluatedDetections++;
      else if (d.tp) outcome.tp++;
      else if (d.ignored) outcome.ignoredDetections++;
      else outcome.fp++;
    }
    for (const g of gtOutcomes) {
      if (!g) continue;
      outcome.groundTruths.push(g);
      if (g.missed) outcome.fn++;
    }
    this.totals.tp += outcome.tp;
    this.totals.fp += outcome.fp;
    this.totals.fn += outcome.fn;
    this.totals.ignoredDetections += outcome.ignoredDetections;
    this.errorAnalysis.addImage(gts, dts, gtCategory, dtCategory, gtOutcomes, detections);
    return outcome;
  }

  /** One image and category: `kept` are the top 100 detections in score order, `gts` in file order. */
  private evaluateGroup(
    k: number,
    kept: readonly EvalDetection[],
    keptOutcomes: readonly DetectionOutcome[],
    gts: readonly EvalGroundTruth[],
    gtPositions: readonly number[],
    gtOutcomes: (GroundTruthOutcome | null)[],
  ): void {
    const D = kept.length;
    const G = gts.length;
    const mt = this.matcher;
    mt.reserve(D, G);
    for (let g = 0; g < G; g++) {
      const gt = gts[g]!;
      mt.gtIds[g] = gt.id;
      mt.gtAreas[g] = gt.area;
      mt.gtCrowd[g] = gt.iscrowd ? 1 : 0;
    }
    for (let d = 0; d < D; d++) mt.dtAreas[d] = kept[d]!.area;
    if (D > 0 && G > 0) this.iou.compute(kept, gts, mt.gtCrowd, mt.ious);
    mt.match(D, G);
    for (let a = 0; a < A; a++) this.gtCounted[k * A + a] = this.gtCounted[k * A + a]! + mt.gtCounted[a]!;
    const { ious, flags, dtGt, gtDt } = mt;
    for (let d = 0; d < D; d++) {
      this.log.push(k, d, kept[d]!.score, flags, d * A);
      const f = flags[d * A + AREA_ALL]!;
      const m = dtGt[d]!;
      let iou = 0;
      if (m >= 0) iou = ious[d * G + m]!;
      else for (let g = 0; g < G; g++) iou = Math.max(iou, ious[d * G + g]!);
      const out = keptOutcomes[d]!;
      out.evaluated = true;
      out.tp = (f & (1 << IOU_50)) !== 0;
      out.ignored = (f & (1 << (IGNORED_SHIFT + IOU_50))) !== 0;
      out.gtId = m >= 0 && gts[m]!.id !== 0 ? gts[m]!.id : null;
      out.iou = iou;
    }
    for (let g = 0; g < G; g++) {
      const taker = gtDt[g]!;
      const ignored = mt.gtIgnored[g] === 1;
      gtOutcomes[gtPositions[g]!] = {
        id: gts[g]!.id,
        matchedDetectionIndex: taker >= 0 ? kept[taker]!.index : null,
        ignored,
        missed: !ignored && taker < 0,
      };
    }
  }

  private categoriesOf(items: readonly { categoryId: number }[]): Int32Array {
    const out = new Int32Array(items.length);
    for (let i = 0; i < items.length; i++) out[i] = this.categoryIndex.get(items[i]!.categoryId) ?? -1;
    return out;
  }

  /** Accumulates and summarizes; the evaluator takes no more images afterwards. */
  finish(): EvaluationResult {
    if (this.finished) throw new Error('CocoEvaluator: finish() called twice');
    this.finished = true;
    const acc = accumulate(this.log, this.gtCounted, this.categoryIds.length);
    return {
      stats: summarizeStats(acc),
      perCategory: summarizeCategories(acc, this.categoryIds),
      iouThresholds: [...IOU_THRESHOLDS],
      recallThresholds: [...RECALL_THRESHOLDS],
      prCurves: prCurves(acc, this.categoryIds),
      totals: { ...this.totals },
      ...this.errorAnalysis.result(),
    };
  }
}
