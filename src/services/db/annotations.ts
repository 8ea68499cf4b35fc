import { A } from '../records/columns.js';
import type { ChunkedAppender } from './chunked-appender.js';
import type { Database, Row } from './connection.js';

const ANNOTATION_COLUMNS = `sample_ord, ord, annotation_id, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, is_crowd,
    segmentation_kind, polygon_count, point_count, num_keypoints, score, source, extra, label_set`;
/** $4: the label sets wanted (0 = ground truth), $5: the lowest score of a prediction kept. */
const IN_RANGE = `SELECT ${ANNOTATION_COLUMNS} FROM annotations
  WHERE dataset_id = $1 AND sample_ord BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], label_set)
    AND (score IS NULL OR score >= $5::DOUBLE)`;
const IN_LIST = `${IN_RANGE} AND list_contains($6::INTEGER[], sample_ord)`;

export interface AnnotationSelection {
  /** Label sets (0: the ground truth); default the ground truth alone. */
  labelSets?: readonly number[];
  /** Predictions below this score are left out. */
  minScore?: number;
}

/**
 * Annotations of many samples of one dataset in one query (the DataLoader batch), in no particular
 * order, without dataset_id and category names (the caller has both: a join for the names costs
 * more than the rest of the query). The table is sorted by (dataset_id, sample_ord), so the ord
 * range lets zone maps skip to the rows. A page of neighbouring samples reads the range alone and
 * drops here the few samples not asked for; a scattered set (a filtered page) also tests the list
 * in SQL, which costs more per row but never reads far beyond the set.
 */
export async function annotationRowsOfSamples(db: Database, datasetId: string, sampleOrds: readonly number[], select: AnnotationSelection = {}): Promise<Row[]> {
  if (sampleOrds.length === 0) return [];
  const labelSets = select.labelSets ?? [0];
  const minScore = select.minScore ?? -Infinity;
  let lo = Infinity;
  let hi = -Infinity;
  for (const o of sampleOrds) {
    if (o < lo) lo = o;
    if (o > hi) hi = o;
  }
  if (hi - lo + 1 > 2 * sampleOrds.length) return db.query(IN_LIST, [datasetId, lo, hi, labelSets, minScore, sampleOrds]);
  const wanted = new Set(sampleOrds);
  return (await db.query(IN_RANGE, [datasetId, lo, hi, labelSets, minScore])).filter((r) => wanted.has(r.sample_ord as number));
}

/** Polygons / RLE / keypoints of some annotations (by ord), for drawing one sample. */
const SHAPES = `SELECT ord, segmentation, keypoints FROM annotation_shapes
  WHERE dataset_id = $1 AND ord BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], ord)`;

export async function shapeRows(db: Database, datasetId: string, ords: readonly number[]): Promise<Row[]> {
  if (ords.length === 0) return [];
  return db.query(SHAPES, [datasetId, Math.min(...ords), Math.max(...ords), ords]);
}

/**
 * The columns of an `annotations` row (appended straight into the table: ANNOTATION_STORED_COLUMNS,
 * then label_set) that every writer takes as they are from an annotation batch's numbers at `o`:
 * the box, the area, the segmentation's kind and counts, and the score. The ids, the sample, the
 * flags, the extra JSON and the label set are the writer's own.
 */
export function appendAnnotationValues(a: ChunkedAppender, n: Float64Array, o: number): void {
  a.num(6, n[o + A.x]!);
  a.num(7, n[o + A.y]!);
  a.num(8, n[o + A.w]!);
  a.num(9, n[o + A.h]!);
  a.num(10, n[o + A.area]!);
  a.num(12, n[o + A.kind]!);
  a.num(13, n[o + A.polygonCount]!);
  a.num(14, n[o + A.pointCount]!);
  a.num(16, n[o + A.score]!);
}
