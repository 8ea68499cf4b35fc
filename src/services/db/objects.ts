import type { Database, Param, Row } from './connection.js';
import { sampleWhereClause, type SampleQueryFilter } from './samples.js';

/**
 * The object view (docs/curation.md, "Objects"): annotations as rows, one label set at a time,
 * limited to the samples a sample filter selects, in a keyset order. Values are always bound;
 * sort columns come from the fixed map below.
 */

/** Conditions on the objects themselves, resolved to ids and codes (services/objects/object-filter.ts). */
export interface ObjectQueryFilter {
  /** 0: the ground truth; else a prediction run's label set. */
  labelSet: number;
  categoryIds?: readonly number[];
  minArea?: number;
  maxArea?: number;
  minConfidence?: number;
  maxConfidence?: number;
  isCrowd?: boolean;
  /** Joins the evaluation's outcome rows of this side: only objects the evaluation saw are listed. */
  evaluation?: {
    id: string;
    side: 'detections' | 'ground_truth';
    /** Outcome codes (db/evaluations.ts DETECTION_OUTCOMES or GROUND_TRUTH_OUTCOMES indexes); any when absent. */
    outcomes?: readonly number[];
    /** Error codes (ERROR_KINDS indexes) of predictions; any when absent. */
    errors?: readonly number[];
  };
}

export type ObjectSortField = 'file' | 'area' | 'confidence' | 'iou';

/**
 * The sort key of each order, as SQL over `a` (annotations) and `e` (the evaluation's rows). A
 * missing value sorts as -infinity (first ascending, last descending), so every row has a key a
 * cursor can carry. File order is (sample, position): the sample's ord is the key.
 */
const SORT_KEYS: Record<ObjectSortField, { sql: string; type: string }> = {
  // The bare column, so that zone maps of the sample-sorted table skip what lies before a cursor.
  file: { sql: 'a.sample_ord', type: 'INTEGER' },
  area: { sql: `coalesce(a.area, '-infinity'::DOUBLE)`, type: 'DOUBLE' },
  confidence: { sql: `coalesce(a.score, '-infinity'::DOUBLE)`, type: 'DOUBLE' },
  iou: { sql: `coalesce(e.iou, '-infinity'::DOUBLE)`, type: 'DOUBLE' },
};

/** Where a page starts: after (or before) the row with this key and ord, in the sort's direction. */
export interface ObjectWindow {
  sort: ObjectSortField;
  descending: boolean;
  direction: 'forward' | 'backward';
  cursor: { key: number; ord: number } | null;
  limit: number;
}

const OBJECT_COLUMNS = `a.sample_ord, a.ord, a.annotation_id, a.image_id, a.category_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area,
  a.is_crowd, a.segmentation_kind, a.polygon_count, a.point_count, a.num_keypoints, a.score, a.source, a.extra, a.label_set`;

function binder(params: Param[]): (v: Param, cast: string) => string {
  return (v, cast) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
}

/** FROM … WHERE … of the objects a filter selects; `params` starts with the dataset id ($1). */
function fromWhere(sample: SampleQueryFilter, f: ObjectQueryFilter, params: Param[]): string {
  const bind = binder(params);
  let from = 'annotations a';
  const where = [`a.dataset_id = $1`, `a.label_set = ${bind(f.labelSet, 'INTEGER')}`];
  if (f.evaluation) {
    const table = f.evaluation.side === 'detections' ? 'eval_detections' : 'eval_ground_truth';
    from += ` JOIN ${table} e ON e.evaluation_id = ${bind(f.evaluation.id, 'VARCHAR')} AND e.ord = a.ord`;
    if (f.evaluation.outcomes) where.push(`list_contains(${bind(f.evaluation.outcomes as number[], 'UTINYINT[]')}, e.outcome)`);
    if (f.evaluation.errors) where.push(`list_contains(${bind(f.evaluation.errors as number[], 'UTINYINT[]')}, e.error)`);
  }
  if (f.categoryIds !== undefined) {
    // Constants, not a subquery of categories: DuckDB filters a constant comparison inside the scan.
    where.push(f.categoryIds.length === 0 ? 'false' : `(${f.categoryIds.map((id) => `a.category_id = ${bind(id, 'BIGINT')}`).join(' OR ')})`);
  }
  if (f.minArea !== undefined) where.push(`a.area >= ${bind(f.minArea, 'DOUBLE')}`);
  if (f.maxArea !== undefined) where.push(`a.area <= ${bind(f.maxArea, 'DOUBLE')}`);
  if (f.minConfidence !== undefined) where.push(`a.score >= ${bind(f.minConfidence, 'DOUBLE')}`);
  if (f.maxConfidence !== undefined) where.push(`a.score <= ${bind(f.maxConfidence, 'DOUBLE')}`);
  if (f.isCrowd !== undefined) where.push(`a.is_crowd = ${bind(f.isCrowd, 'BOOLEAN')}`);
  const samples = sampleWhereClause(sample, params);
  if (samples) where.push(`a.sample_ord IN (SELECT ord FROM samples WHERE dataset_id = $1${samples})`);
  return `FROM ${from} WHERE ${where.join(' AND ')}`;
}

/**
 * One window of objects in the window's order, `limit + 1` rows so the caller learns whether more
 * exist, returned in list order whatever the direction. Each row carries its `sort_key`, and with
 * an evaluation its outcome, IoU and error codes.
 */
export async function listObjectRows(db: Database, datasetId: string, sample: SampleQueryFilter, f: ObjectQueryFilter, w: ObjectWindow): Promise<Row[]> {
  const params: Param[] = [datasetId];
  let sql = fromWhere(sample, f, params);
  const { sql: key, type } = SORT_KEYS[w.sort];
  // Backward pages walk the order in reverse and are turned round below.
  const descending = w.descending !== (w.direction === 'backward');
  if (w.cursor) {
    const bind = binder(params);
    const k = bind(w.cursor.key, type);
    const o = bind(w.cursor.ord, 'INTEGER');
    const [past, beyond] = descending ? ['<=', '<'] : ['>=', '>'];
    // The first conjunct alone lets zone maps skip what lies before the cursor (file order: whole
    // row groups of earlier samples); the second is the exact keyset condition.
    sql += ` AND ${key} ${past} ${k} AND (${key} ${beyond} ${k} OR a.ord ${beyond} ${o})`;
  }
  const dir = descending ? 'DESC' : 'ASC';
  const evaluated = f.evaluation ? `, e.outcome AS eval_outcome, ${f.evaluation.side === 'detections' ? 'e.iou' : 'NULL'} AS eval_iou, ${f.evaluation.side === 'detections' ? 'e.error' : 'NULL'} AS eval_error` : '';
  const rows = await db.query(
    `SELECT ${OBJECT_COLUMNS}, ${key} AS sort_key${evaluated} ${sql} ORDER BY ${key} ${dir}, a.ord ${dir} LIMIT ${binder(params)(w.limit + 1, 'INTEGER')}`,
    params,
  );
  return w.direction === 'backward' ? rows.reverse() : rows;
}

export async function countObjectRows(db: Database, datasetId: string, sample: SampleQueryFilter, f: ObjectQueryFilter): Promise<number> {
  const params: Param[] = [datasetId];
  return Number((await db.query(`SELECT count(*) AS n ${fromWhere(sample, f, params)}`, params))[0]?.n ?? 0);
}

/** One annotation of any label set, by ord, with its sample's file name and size: what a crop needs. */
const OBJECT_WITH_SAMPLE = `SELECT a.ord, a.image_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, s.file_name, s.width, s.height
  FROM annotations a JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord
  WHERE a.dataset_id = $1 AND a.ord = $2::INTEGER`;

export async function getObjectWithSample(db: Database, datasetId: string, ord: number): Promise<Row | undefined> {
  return (await db.query(OBJECT_WITH_SAMPLE, [datasetId, ord]))[0];
}
