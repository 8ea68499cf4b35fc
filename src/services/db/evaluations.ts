import type { ChunkedAppender } from './chunked-appender.js';
import { jsonColumn, type Database, type Row, type Transaction } from './connection.js';

/**
 * Evaluations of prediction runs and their per-object outcomes. Outcomes are rows, not JSON, so
 * that the sample filter and the object-level views can join them: one row per prediction, per
 * ground-truth object and per sample, at IoU 0.5, area all, 100 detections.
 */

export const DETECTION_OUTCOMES = ['tp', 'fp', 'ignored', 'not_evaluated'] as const;
export const GROUND_TRUTH_OUTCOMES = ['tp', 'fn', 'ignored'] as const;
export const ERROR_KINDS = ['classification', 'localization', 'both', 'duplicate', 'background', 'missed'] as const;
export type DetectionOutcomeName = (typeof DETECTION_OUTCOMES)[number];
export type GroundTruthOutcomeName = (typeof GROUND_TRUTH_OUTCOMES)[number];
export type ErrorKindName = (typeof ERROR_KINDS)[number];

/** The rows an evaluation reads, in ascending image id (the evaluator's order), then file order. */
export interface GroundTruthRow {
  imageId: number;
  sampleOrd: number;
  ord: number;
  annotationId: number;
  categoryId: number;
  bbox: [number, number, number, number] | null;
  area: number | null;
  isCrowd: boolean;
  segmentation: string | null;
  width: number | null;
  height: number | null;
}

export interface DetectionRow {
  imageId: number;
  sampleOrd: number;
  ord: number;
  categoryId: number;
  score: number;
  bbox: [number, number, number, number] | null;
  area: number | null;
  segmentation: string | null;
  width: number | null;
  height: number | null;
}

/**
 * Every number as DOUBLE (ids fit: COCO's are below 2^53), read as whole columns (ColumnChunk).
 * Image sizes only for masks, which are drawn at them: bbox reads the annotations table alone.
 */
const GT_ROWS = (shapes: boolean) => `SELECT a.image_id::DOUBLE, a.sample_ord::DOUBLE, a.ord::DOUBLE, a.annotation_id::DOUBLE, a.category_id::DOUBLE,
    a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area, a.is_crowd::DOUBLE${SHAPE_COLUMNS(shapes)}
  ${SHAPE_JOINS(shapes)}
  WHERE a.dataset_id = $1 AND a.label_set = 0
  ORDER BY a.image_id, a.ord`;

const DT_ROWS = (shapes: boolean) => `SELECT a.image_id::DOUBLE, a.sample_ord::DOUBLE, a.ord::DOUBLE, a.category_id::DOUBLE, a.score,
    a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area${SHAPE_COLUMNS(shapes)}
  ${SHAPE_JOINS(shapes)}
  WHERE a.dataset_id = $1 AND a.label_set = $2
  ORDER BY a.image_id, a.ord`;

const SHAPE_COLUMNS = (shapes: boolean) => (shapes ? ', s.width::DOUBLE, s.height::DOUBLE, h.segmentation' : '');
const SHAPE_JOINS = (shapes: boolean) =>
  shapes
    ? `FROM annotations a JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord
  LEFT JOIN annotation_shapes h ON h.dataset_id = a.dataset_id AND h.ord = a.ord`
    : 'FROM annotations a';

const orNull = (v: number): number | null => (v === v ? v : null);

/** The ground truth of a dataset, streamed chunk by chunk in ascending image id. */
export async function* streamGroundTruth(db: Database, datasetId: string, shapes: boolean): AsyncGenerator<GroundTruthRow[]> {
  for await (const c of db.stream(GT_ROWS(shapes), [datasetId])) {
    const [imageId, sampleOrd, ord, annotationId, categoryId, x, y, w, h, area, isCrowd] = Array.from({ length: 11 }, (_, i) => c.numbers(i));
    const [width, height, segmentation] = shapes ? [c.numbers(11), c.numbers(12), c.strings(13)] : [null, null, null];
    const rows: GroundTruthRow[] = new Array(c.rowCount);
    for (let i = 0; i < c.rowCount; i++) {
      rows[i] = {
        imageId: imageId![i]!, sampleOrd: sampleOrd![i]!, ord: ord![i]!, annotationId: annotationId![i]!, categoryId: categoryId![i]!,
        bbox: x![i] === x![i] ? [x![i]!, y![i]!, w![i]!, h![i]!] : null, area: orNull(area![i]!), isCrowd: isCrowd![i] === 1,
        segmentation: segmentation?.[i] ?? null, width: width ? orNull(width[i]!) : null, height: height ? orNull(height[i]!) : null,
      };
    }
    yield rows;
  }
}

/** The predictions of a label set, streamed chunk by chunk in ascending image id. */
export async function* streamDetections(db: Database, datasetId: string, labelSet: number, shapes: boolean): AsyncGenerator<DetectionRow[]> {
  for await (const c of db.stream(DT_ROWS(shapes), [datasetId, labelSet])) {
    const [imageId, sampleOrd, ord, categoryId, score, x, y, w, h, area] = Array.from({ length: 10 }, (_, i) => c.numbers(i));
    const [width, height, segmentation] = shapes ? [c.numbers(10), c.numbers(11), c.strings(12)] : [null, null, null];
    const rows: DetectionRow[] = new Array(c.rowCount);
    for (let i = 0; i < c.rowCount; i++) {
      rows[i] = {
        imageId: imageId![i]!, sampleOrd: sampleOrd![i]!, ord: ord![i]!, categoryId: categoryId![i]!, score: score![i]!,
        bbox: x![i] === x![i] ? [x![i]!, y![i]!, w![i]!, h![i]!] : null, area: orNull(area![i]!),
        segmentation: segmentation?.[i] ?? null, width: width ? orNull(width[i]!) : null, height: height ? orNull(height[i]!) : null,
      };
    }
    yield rows;
  }
}

/** How many ground-truth objects that have a box (bbox) or a polygon or mask (segm) lack one. */
export async function countGroundTruthWithoutShape(db: Database, datasetId: string): Promise<{ total: number; withoutShape: number }> {
  const [r] = await db.query(
    `SELECT count(*) AS total, count(*) FILTER (WHERE h.segmentation IS NULL) AS without_shape
     FROM annotations a LEFT JOIN annotation_shapes h ON h.dataset_id = a.dataset_id AND h.ord = a.ord
     WHERE a.dataset_id = $1 AND a.label_set = 0 AND a.segmentation_kind <> 'none'`,
    [datasetId],
  );
  const [none] = await db.query(`SELECT count(*) AS n FROM annotations WHERE dataset_id = $1 AND label_set = 0 AND segmentation_kind = 'none'`, [datasetId]);
  return { total: Number(r?.total ?? 0) + Number(none?.n ?? 0), withoutShape: Number(r?.without_shape ?? 0) + Number(none?.n ?? 0) };
}

export interface EvaluationRecord {
  id: string;
  datasetId: string;
  labelSet: number;
  predictions: string;
  iouType: string;
  /** The revision of the ground truth and of the run it was computed at. */
  revision: number;
  metrics: Record<string, number>;
  perCategory: unknown[];
  confusion: unknown;
  totals: Record<string, number>;
  errors: Record<string, number>;
  createdAt: Date;
  seconds: number;
  /** The ground truth or the run changed since (their label sets' revision moved past `revision`). */
  stale: boolean;
}

const EVALUATION_COLUMNS = `e.id, e.dataset_id, e.label_set, e.predictions, e.iou_type, e.revision, e.metrics::VARCHAR AS metrics,
  e.per_category::VARCHAR AS per_category, e.confusion::VARCHAR AS confusion, e.totals::VARCHAR AS totals, e.errors::VARCHAR AS errors,
  epoch_ms(e.created_at) AS created_ms, e.seconds,
  coalesce((SELECT max(l.revision) FROM label_sets l WHERE l.dataset_id = e.dataset_id AND l.label_set IN (0, e.label_set)), 0) > e.revision AS stale`;

const toEvaluation = (r: Row): EvaluationRecord => ({
  id: r.id as string,
  datasetId: r.dataset_id as string,
  labelSet: r.label_set as number,
  predictions: r.predictions as string,
  iouType: r.iou_type as string,
  revision: r.revision as number,
  metrics: jsonColumn(r.metrics) ?? {},
  perCategory: jsonColumn(r.per_category) ?? [],
  confusion: jsonColumn(r.confusion),
  totals: jsonColumn(r.totals) ?? {},
  errors: jsonColumn(r.errors) ?? {},
  createdAt: new Date(r.created_ms as number),
  seconds: r.seconds as number,
  stale: r.stale as boolean,
});

export async function getEvaluationRow(db: Database, datasetId: string, id: string): Promise<EvaluationRecord | undefined> {
  const [r] = await db.query(`SELECT ${EVALUATION_COLUMNS} FROM evaluations e WHERE e.dataset_id = $1 AND e.id = $2`, [datasetId, id]);
  return r ? toEvaluation(r) : undefined;
}

export async function listEvaluationRows(db: Database, datasetId: string): Promise<EvaluationRecord[]> {
  return (await db.query(`SELECT ${EVALUATION_COLUMNS} FROM evaluations e WHERE e.dataset_id = $1 ORDER BY e.created_at, e.id`, [datasetId])).map(toEvaluation);
}

/** One curve per category and IoU threshold: precision and score at each of the 101 recall points. */
export async function curveRows(db: Database, evaluationId: string): Promise<Row[]> {
  return db.query(`SELECT category_id, iou_index, precision, scores FROM eval_curves WHERE evaluation_id = $1 ORDER BY category_id, iou_index`, [evaluationId]);
}

/** Sample-level counts of many samples of one evaluation (IoU 0.5, all areas, 100 detections). */
export async function sampleOutcomeRows(db: Database, evaluationId: string, sampleOrds: readonly number[]): Promise<Row[]> {
  return db.query(`SELECT sample_ord, tp, fp, fn FROM eval_samples WHERE evaluation_id = $1 AND list_contains($2::INTEGER[], sample_ord)`, [evaluationId, sampleOrds]);
}

/** The outcome rows of an evaluation being written, inside its transaction. */
export class EvaluationWriter {
  private constructor(
    private readonly tx: Transaction,
    readonly id: string,
    private readonly detections: ChunkedAppender,
    private readonly groundTruth: ChunkedAppender,
    private readonly samples: ChunkedAppender,
  ) {}

  static async begin(tx: Transaction, id: string): Promise<EvaluationWriter> {
    return new EvaluationWriter(tx, id, await tx.appender('eval_detections'), await tx.appender('eval_ground_truth'), await tx.appender('eval_samples'));
  }

  detection(sampleOrd: number, ord: number, score: number, outcome: DetectionOutcomeName, gtOrd: number | null, iou: number | null, error: ErrorKindName | null): void {
    const a = this.detections;
    a.text(0, this.id);
    a.num(1, ord);
    a.num(2, sampleOrd);
    a.num(3, score);
    a.num(4, DETECTION_OUTCOMES.indexOf(outcome));
    a.num(5, gtOrd ?? NaN);
    a.num(6, iou ?? NaN);
    a.num(7, error === null ? NaN : ERROR_KINDS.indexOf(error));
    a.endRow();
  }

  groundTruthObject(sampleOrd: number, ord: number, outcome: GroundTruthOutcomeName, dtOrd: number | null): void {
    const a = this.groundTruth;
    a.text(0, this.id);
    a.num(1, ord);
    a.num(2, sampleOrd);
    a.num(3, GROUND_TRUTH_OUTCOMES.indexOf(outcome));
    a.num(4, dtOrd ?? NaN);
    a.endRow();
  }

  sample(sampleOrd: number, tp: number, fp: number, fn: number): void {
    const a = this.samples;
    a.text(0, this.id);
    a.num(1, sampleOrd);
    a.num(2, tp);
    a.num(3, fp);
    a.num(4, fn);
    a.endRow();
  }

  async finish(record: Omit<EvaluationRecord, 'stale' | 'createdAt'>, curves: { categoryId: number; precision: number[][]; scores: number[][] }[]): Promise<void> {
    for (const a of [this.detections, this.groundTruth, this.samples]) a.close();
    const { tx } = this;
    await tx.run(
      `INSERT INTO evaluations VALUES ($1, $2, $3, $4, $5, $6, $7::JSON, $8::JSON, $9::JSON, $10::JSON, $11::JSON, now(), $12)`,
      [record.id, record.datasetId, record.labelSet, record.predictions, record.iouType, record.revision, JSON.stringify(record.metrics),
        JSON.stringify(record.perCategory), JSON.stringify(record.confusion), JSON.stringify(record.totals), JSON.stringify(record.errors), record.seconds],
    );
    // Every curve in one statement: JSON numbers read back as the same doubles (shortest round-trip text).
    const rows = curves.flatMap((c) => c.precision.map((precision, t) => ({ category_id: c.categoryId, iou_index: t, precision, scores: c.scores[t]! })));
    await tx.run(INSERT_CURVES, [record.id, JSON.stringify(rows)]);
  }
}

const INSERT_CURVES = `INSERT INTO eval_curves SELECT $1, category_id, iou_index, precision, scores FROM (
  SELECT unnest(from_json($2, '[{"category_id":"BIGINT","iou_index":"INTEGER","precision":"DOUBLE[]","scores":"DOUBLE[]"}]'), recursive := true))`;

/** Every row of the evaluations of a label set (or of one evaluation), inside a change of the dataset. */
export async function deleteEvaluations(tx: Transaction, datasetId: string, where: { labelSet: number } | { id: string }): Promise<number> {
  const [cond, value] = 'id' in where ? ['id = $2', where.id] : ['label_set = $2', where.labelSet];
  const ids = (await tx.query(`SELECT id FROM evaluations WHERE dataset_id = $1 AND ${cond}`, [datasetId, value])).map((r) => r.id as string);
  if (ids.length === 0) return 0;
  for (const table of ['eval_detections', 'eval_ground_truth', 'eval_samples', 'eval_curves']) {
    await tx.run(`DELETE FROM ${table} WHERE list_contains($1::VARCHAR[], evaluation_id)`, [ids]);
  }
  await tx.run(`DELETE FROM evaluations WHERE list_contains($1::VARCHAR[], id)`, [ids]);
  return ids.length;
}

/** The outcomes of some annotations (predictions and ground-truth objects, by ord) in one evaluation: one query. */
export async function annotationOutcomeRows(db: Database, evaluationId: string, ords: readonly number[]): Promise<Row[]> {
  return db.query(
    `SELECT ord, 'prediction' AS side, outcome, iou, error, gt_ord AS other_ord FROM eval_detections WHERE evaluation_id = $1 AND list_contains($2::INTEGER[], ord)
     UNION ALL
     SELECT ord, 'ground_truth' AS side, outcome, NULL AS iou, NULL AS error, dt_ord AS other_ord FROM eval_ground_truth WHERE evaluation_id = $1 AND list_contains($2::INTEGER[], ord)`,
    [evaluationId, ords],
  );
}
