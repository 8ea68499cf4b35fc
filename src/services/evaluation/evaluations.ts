import type { Database } from '../db/connection.js';
import {
  annotationOutcomeRows,
  countGroundTruthWithoutShape,
  DETECTION_OUTCOMES,
  ERROR_KINDS,
  GROUND_TRUTH_OUTCOMES,
  curveRows,
  deleteEvaluations,
  EvaluationWriter,
  getEvaluationRow,
  listEvaluationRows,
  sampleOutcomeRows,
  streamDetections,
  streamGroundTruth,
  type DetectionRow,
  type EvaluationRecord,
  type GroundTruthRow,
} from '../db/evaluations.js';
import type { DatasetService } from '../datasets/datasets.js';
import { BadInputError, DataVisorError, isDataVisorError, NotFoundError } from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { PredictionService } from '../predictions/predictions.js';
import { CocoEvaluator } from './coco-eval.js';
import { groundTruthFromCoco, segmentationToRle, type CocoSegmentation } from './coco-inputs.js';
import { rleArea, rleFromBbox, rleToBbox } from './mask.js';
import type { EvalDetection, EvalGroundTruth, IouType } from './types.js';
import { imagesInOrder } from './image-merge.js';
import { IOU_THRESHOLDS, RECALL_THRESHOLDS } from './params.js';

export type Evaluation = EvaluationRecord;
export const IOU_TYPES: readonly IouType[] = ['bbox', 'segm'];

export interface EvaluateRequest {
  datasetId: string;
  /** The prediction run's name. */
  predictions: string;
  iouType?: IouType | null;
}

export interface EvaluationDeps {
  db: Database;
  datasets: DatasetService;
  predictions: PredictionService;
  log: Logger;
}

/** An annotation's part in an evaluation (IoU 0.5, all areas, 100 detections). */
export interface AnnotationOutcome {
  /** Predictions: tp, fp, ignored (matched a crowd region), not_evaluated; ground truth: tp, fn, ignored (crowd). */
  outcome: string;
  /** Predictions: the IoU with the object taken, else the best with one of their category; null otherwise. */
  iou: number | null;
  /** False positives: TIDE's kind; missed objects: `missed`. */
  error: string | null;
  /** The ord of the object a prediction took, or of the prediction that took an object. */
  matchedOrd: number | null;
}

export interface SampleOutcome {
  tp: number;
  fp: number;
  fn: number;
}

/**
 * COCO detection evaluation of a prediction run against the dataset's ground truth, with the
 * numbers of pycocotools' COCOeval (docs/evaluation.md). Ground truth and predictions stream out
 * of DuckDB in ascending image id, image by image into the evaluator; every prediction's,
 * object's and sample's outcome is written as it comes, so memory holds one image's rows and the
 * evaluator's compact per-detection state.
 */
export class EvaluationService {
  /** pycocotools' thresholds (np.linspace values), for curves. */
  readonly iouThresholds: readonly number[] = IOU_THRESHOLDS;
  readonly recallThresholds: readonly number[] = RECALL_THRESHOLDS;

  constructor(private readonly deps: EvaluationDeps) {}

  async evaluate(request: EvaluateRequest): Promise<Evaluation> {
    const iouType = request.iouType ?? 'bbox';
    if (!IOU_TYPES.includes(iouType)) throw new BadInputError(`iou_type must be "bbox" or "segm", got ${JSON.stringify(iouType)}`);
    const { db, datasets, predictions, log } = this.deps;
    const dataset = await datasets.get(request.datasetId);
    const run = await predictions.get(dataset.id, request.predictions);
    if (iouType === 'segm') await this.requireShapes(dataset.id);
    const categories = await datasets.categories(dataset.id);
    const started = performance.now();
    const evaluator = new CocoEvaluator({ iouType, categoryIds: categories.map((c) => c.categoryId) });
    const id = newId();
    // Written in a transaction of its own: an evaluation is new rows under a new id, and changes no
    // answer given before it, so the dataset's revision stays.
    const tx = await db.begin();
    try {
      const writer = await EvaluationWriter.begin(tx, id);
      const gtStream = streamGroundTruth(db, dataset.id, iouType === 'segm');
      const dtStream = streamDetections(db, dataset.id, run.labelSet, iouType === 'segm');
      for await (const image of imagesInOrder(gtStream, dtStream)) {
        const gts = image.gts.map((g) => groundTruthOf(g, iouType));
        const dts = image.dts.map((d) => detectionOf(d, d.ord - run.ordBase, iouType));
        const outcome = evaluator.addImage(image.imageId, gts, dts);
        this.write(writer, image.gts, image.dts, run.ordBase, outcome);
      }
      const result = evaluator.finish();
      const seconds = (performance.now() - started) / 1000;
      const names = new Map(categories.map((c) => [c.categoryId, c.name]));
      const [{ revision }] = (await tx.query(`SELECT revision FROM datasets WHERE id = $1`, [dataset.id])) as [{ revision: number }];
      await writer.finish(
        {
          id, datasetId: dataset.id, labelSet: run.labelSet, predictions: run.name, iouType, revision, seconds,
          metrics: { ...result.stats },
          perCategory: result.perCategory.map((c) => ({ category_id: c.categoryId, name: names.get(c.categoryId) ?? null, ap: c.ap, ap50: c.ap50, ap75: c.ap75, ar100: c.ar100 })),
          confusion: { category_ids: result.confusion.categoryIds, matrix: result.confusion.matrix },
          totals: { ...result.totals },
          errors: { ...result.errors },
        },
        result.prCurves,
      );
      await tx.commit();
      log.info({ dataset_id: dataset.id, evaluation_id: id, predictions: run.name, iou_type: iouType, seconds }, 'evaluation complete');
    } catch (err) {
      await tx.rollback();
      throw toEvaluationError(err);
    }
    return this.get(dataset.id, id);
  }

  async get(datasetId: string, id: string): Promise<Evaluation> {
    await this.deps.datasets.get(datasetId);
    const found = isId(id) ? await getEvaluationRow(this.deps.db, datasetId, id) : undefined;
    if (!found) throw new NotFoundError(`evaluation of dataset ${datasetId}`, id);
    return found;
  }

  async list(datasetId: string): Promise<Evaluation[]> {
    await this.deps.datasets.get(datasetId);
    return listEvaluationRows(this.deps.db, datasetId);
  }

  /** Deletes an evaluation and its outcome rows: answers filtered on it change, so the dataset's revision moves on. */
  async delete(datasetId: string, id: string): Promise<void> {
    const { result } = await this.deps.datasets.change(datasetId, (tx) => deleteEvaluations(tx, datasetId, { id }));
    if (result === 0) throw new NotFoundError(`evaluation of dataset ${datasetId}`, id);
  }

  /** Precision and score at the 101 recall points, per category and IoU threshold (area all, 100 detections). */
  async curves(datasetId: string, id: string): Promise<{ categoryId: number; iouIndex: number; precision: number[]; scores: number[] }[]> {
    await this.get(datasetId, id);
    return (await curveRows(this.deps.db, id)).map((r) => ({
      categoryId: r.category_id as number, iouIndex: r.iou_index as number, precision: r.precision as number[], scores: r.scores as number[],
    }));
  }

  /** TP/FP/FN of many samples (by ord) in one query, in key order; zeros for a sample without outcomes. */
  async sampleOutcomes(evaluationId: string, sampleOrds: readonly number[]): Promise<SampleOutcome[]> {
    const rows = await sampleOutcomeRows(this.deps.db, evaluationId, sampleOrds);
    const byOrd = new Map(rows.map((r) => [r.sample_ord as number, { tp: r.tp as number, fp: r.fp as number, fn: r.fn as number }]));
    return sampleOrds.map((o) => byOrd.get(o) ?? { tp: 0, fp: 0, fn: 0 });
  }

  /** Outcomes of annotations (by ord) of one evaluation, in key order; null for one it did not see. */
  async annotationOutcomes(evaluationId: string, ords: readonly number[]): Promise<(AnnotationOutcome | null)[]> {
    const rows = await annotationOutcomeRows(this.deps.db, evaluationId, ords);
    const byOrd = new Map<number, AnnotationOutcome>();
    for (const r of rows) {
      const prediction = r.side === 'prediction';
      const outcome = (prediction ? DETECTION_OUTCOMES : GROUND_TRUTH_OUTCOMES)[r.outcome as number]!;
      byOrd.set(r.ord as number, {
        outcome,
        iou: (r.iou as number | null) ?? null,
        error: r.error !== null && r.error !== undefined ? ERROR_KINDS[r.error as number]! : outcome === 'fn' ? 'missed' : null,
        matchedOrd: (r.other_ord as number | null) ?? null,
      });
    }
    return ords.map((o) => byOrd.get(o) ?? null);
  }

  private write(writer: EvaluationWriter, gts: readonly GroundTruthRow[], dts: readonly DetectionRow[], ordBase: number, outcome: ReturnType<CocoEvaluator['addImage']>): void {
    const sampleOrd = (gts[0] ?? dts[0])!.sampleOrd;
    // GT ids may repeat within a file: an id names the first of its objects not yet matched.
    const gtOrds = new Map<number, number[]>();
    for (const g of gts) {
      const list = gtOrds.get(g.annotationId);
      if (list) list.push(g.ord);
      else gtOrds.set(g.annotationId, [g.ord]);
    }
    // The evaluator answers detections in the order it was given them.
    outcome.detections.forEach((d, i) => {
      const row = dts[i]!;
      if (d.index !== row.ord - ordBase) throw new DataVisorError('INTERNAL', `the evaluator answered detection ${d.index} in the place of ${row.ord - ordBase}`);
      const kind = !d.evaluated ? 'not_evaluated' : d.tp ? 'tp' : d.ignored ? 'ignored' : 'fp';
      const gtOrd = d.gtId === null ? null : (gtOrds.get(d.gtId)?.[0] ?? null);
      writer.detection(sampleOrd, row.ord, row.score, kind, gtOrd, d.iou, d.error);
    });
    if (outcome.groundTruths.length !== gts.length) {
      throw new DataVisorError('INTERNAL', `the evaluator answered ${outcome.groundTruths.length} ground-truth outcomes for ${gts.length} objects`);
    }
    outcome.groundTruths.forEach((g, i) => {
      const row = gts[i]!;
      const kind = g.ignored ? 'ignored' : g.missed ? 'fn' : 'tp';
      writer.groundTruthObject(sampleOrd, row.ord, kind, g.matchedDetectionIndex === null ? null : ordBase + g.matchedDetectionIndex);
    });
    writer.sample(sampleOrd, outcome.tp, outcome.fp, outcome.fn);
  }

  private async requireShapes(datasetId: string): Promise<void> {
    const { total, withoutShape } = await countGroundTruthWithoutShape(this.deps.db, datasetId);
    if (withoutShape > 0) {
      throw new DataVisorError(
        'FAILED_PRECONDITION',
        `segm evaluation needs the ground truth's polygons and masks, and ${withoutShape} of the dataset's ${total} objects have none stored: ` +
          'ingest the annotation file again with shapes (datavisor ingest --shapes, or DATAVISOR_STORE_SHAPES=1); objects without a segmentation in the file cannot be evaluated as masks',
      );
    }
  }
}

function groundTruthOf(g: GroundTruthRow, iouType: IouType): EvalGroundTruth {
  if (g.area === null) throw new BadInputError(`ground-truth annotation ${g.annotationId} (image ${g.imageId}) has no area: COCO evaluation ranges objects by their area`);
  if (iouType === 'bbox' && g.bbox === null) throw new BadInputError(`ground-truth annotation ${g.annotationId} (image ${g.imageId}) has no box to evaluate`);
  return groundTruthFromCoco(
    {
      id: g.annotationId, category_id: g.categoryId, area: g.area, iscrowd: g.isCrowd, bbox: g.bbox ?? undefined,
      segmentation: g.segmentation === null ? undefined : (JSON.parse(g.segmentation) as CocoSegmentation),
    },
    iouType,
    iouType === 'segm' ? imageSize(g) : NO_SIZE,
  );
}

/** bbox never draws a mask: the image's size is not read for it. */
const NO_SIZE = { width: NaN, height: NaN };

/**
 * A stored prediction as the evaluator takes it. Its box and area were set at import as
 * pycocotools' loadRes sets them (results-reader.ts); segm compares its mask, or its box as a mask
 * when it has none (loadRes's polygon of the box).
 */
function detectionOf(d: DetectionRow, index: number, iouType: IouType): EvalDetection {
  const mask = iouType === 'segm' && d.segmentation !== null ? segmentationToRle(JSON.parse(d.segmentation) as CocoSegmentation, imageSize(d)) : null;
  const bbox = d.bbox ?? (mask ? rleToBbox(mask) : null);
  if (bbox === null) throw new BadInputError(`prediction ${index} of the run (image ${d.imageId}) has neither a box nor a mask`);
  // Polygon results without a box are sized at evaluation: their area needs the image's size.
  const area = d.area ?? (mask ? rleArea(mask) : null);
  if (area === null) throw new BadInputError(`prediction ${index} of the run (image ${d.imageId}) has no area: give it a box or a mask`);
  if (iouType === 'bbox') return { index, categoryId: d.categoryId, score: d.score, bbox, area };
  return { index, categoryId: d.categoryId, score: d.score, bbox, area, rle: mask ?? rleFromBbox(bbox, imageSize(d).height, imageSize(d).width) };
}

function imageSize(r: { width: number | null; height: number | null; imageId: number }) {
  if (r.width === null || r.height === null) throw new BadInputError(`image ${r.imageId} has no width or height: masks are drawn at the image's size`);
  return { width: r.width, height: r.height };
}

function toEvaluationError(err: unknown): DataVisorError {
  if (isDataVisorError(err)) return err;
  // The engine's own checks (a box or mask a result lacks) are about the run's content.
  return new DataVisorError('BAD_USER_INPUT', `Cannot evaluate: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

