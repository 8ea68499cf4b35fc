import { annotationConditionSql, type AnnotationConditions } from './annotation-conditions.js';
import type { Database, Param, Row } from './connection.js';
import { DETECTION_OUTCOMES, ERROR_KINDS, GROUND_TRUTH_OUTCOMES } from './evaluations.js';
import { metadataConditionSql, type MetadataCondition } from './metadata-conditions.js';

/**
 * Sample queries. Filters are composed from the fixed fragments below with every value bound;
 * no user text ever becomes SQL. Windows here are in file order (`ord`), which is dense
 * (0..n-1) per dataset: an unfiltered offset page is a range scan, and a keyset cursor is an ord.
 * Sorted windows are in sample-sort.ts, over the same WHERE clause.
 */
export interface SampleQueryFilter extends AnnotationConditions {
  split?: string;
  fileNameContains?: string;
  /** Case-insensitive substring. */
  fileNameContainsIgnoreCase?: string;
  /** A glob (`*`, `?`, `[a-z]`), matched against the whole name, case-sensitive. */
  fileNameGlob?: string;
  minAnnotations?: number;
  maxAnnotations?: number;
  minWidth?: number;
  maxWidth?: number;
  minHeight?: number;
  maxHeight?: number;
  /** width × height; a sample without a size has none and never matches a range. */
  minPixels?: number;
  maxPixels?: number;
  fileMissing?: boolean;
  /** The sample has one of these outcomes in this evaluation (IoU 0.5, all areas, 100 detections). */
  evaluationId?: string;
  evaluationHas?: readonly ('tp' | 'fp' | 'fn')[];
  /** With evaluationId: the object's error kind is one of these (`missed`: a missed object). */
  evaluationErrors?: readonly ('classification' | 'localization' | 'both' | 'duplicate' | 'background' | 'missed')[];
  /** With evaluationId: the object (a prediction, or a missed object) is of one of these categories. */
  evaluationCategoryIds?: readonly number[];
  /** Tagged with any of these (`[]` matches nothing). */
  tags?: readonly string[];
  /** Tagged with every one of these. */
  tagsAll?: readonly string[];
  /** Tagged with none of these. */
  tagsNone?: readonly string[];
  /** The sample has an annotation tagged with any of these. */
  annotationTags?: readonly string[];
  /** A second filter that must hold too: a saved view's, with the one of the request. */
  also?: SampleQueryFilter;
  /** Every one must hold. */
  metadata?: readonly MetadataCondition[];
}

export type SampleWindow =
  | { kind: 'offset'; offset: number; limit: number }
  | { kind: 'after'; afterOrd: number | null; limit: number }
  | { kind: 'before'; beforeOrd: number | null; limit: number };

// Without dataset_id: every query is for one dataset, which the caller knows.
export const SAMPLE_COLUMNS = `ord, image_id, file_name, width, height, split, license_id, coco_url, flickr_url,
  date_captured, metadata, annotation_count, file_missing`;

const GET_SAMPLE = `SELECT ${SAMPLE_COLUMNS} FROM samples WHERE dataset_id = $1 AND image_id = $2::BIGINT`;
const GET_SAMPLES_BY_IDS = `SELECT ${SAMPLE_COLUMNS} FROM samples WHERE dataset_id = $1 AND list_contains($2::BIGINT[], image_id)`;

export function hasFilter(f: SampleQueryFilter): boolean {
  return Object.values(f).some((v) => v !== undefined);
}

/** Appends a value to `params` and answers its placeholder. */
function binder(params: Param[], cast = ''): (v: Param) => string {
  return (v) => {
    params.push(v);
    return `$${params.length}${cast}`;
  };
}

/** A window over an ord column: its keyset condition (or ''), ORDER BY, and LIMIT/OFFSET. */
function windowClauses(column: string, w: SampleWindow, bind: (v: number) => string): { cond: string; order: string; tail: string } {
  const limit = ` LIMIT ${bind(w.limit + 1)}`;
  if (w.kind === 'offset') return { cond: '', order: column, tail: `${limit} OFFSET ${bind(w.offset)}` };
  if (w.kind === 'after') return { cond: w.afterOrd === null ? '' : ` AND ${column} > ${bind(w.afterOrd)}`, order: column, tail: limit };
  return { cond: w.beforeOrd === null ? '' : ` AND ${column} < ${bind(w.beforeOrd)}`, order: `${column} DESC`, tail: limit };
}

/** Predicates on the samples table itself, values bound into `params`. */
function samplePredicates(f: SampleQueryFilter, params: Param[]): string[] {
  const bind = binder(params);
  const parts: string[] = [];
  if (f.split !== undefined) parts.push(`split = ${bind(f.split)}`);
  // contains() is a plain substring test, case-sensitive, with no LIKE wildcards to escape.
  if (f.fileNameContains !== undefined) parts.push(`contains(file_name, ${bind(f.fileNameContains)})`);
  if (f.fileNameContainsIgnoreCase !== undefined) parts.push(`contains(lower(file_name), lower(${bind(f.fileNameContainsIgnoreCase)}::VARCHAR))`);
  if (f.fileNameGlob !== undefined) parts.push(`file_name GLOB ${bind(f.fileNameGlob)}::VARCHAR`);
  if (f.minAnnotations !== undefined) parts.push(`annotation_count >= ${bind(f.minAnnotations)}::INTEGER`);
  if (f.maxAnnotations !== undefined) parts.push(`annotation_count <= ${bind(f.maxAnnotations)}::INTEGER`);
  if (f.minWidth !== undefined) parts.push(`width >= ${bind(f.minWidth)}::INTEGER`);
  if (f.maxWidth !== undefined) parts.push(`width <= ${bind(f.maxWidth)}::INTEGER`);
  if (f.minHeight !== undefined) parts.push(`height >= ${bind(f.minHeight)}::INTEGER`);
  if (f.maxHeight !== undefined) parts.push(`height <= ${bind(f.maxHeight)}::INTEGER`);
  if (f.minPixels !== undefined) parts.push(`width::BIGINT * height >= ${bind(f.minPixels)}::BIGINT`);
  if (f.maxPixels !== undefined) parts.push(`width::BIGINT * height <= ${bind(f.maxPixels)}::BIGINT`);
  if (f.fileMissing !== undefined) parts.push(`file_missing = ${bind(f.fileMissing)}`);
  if (f.evaluationId !== undefined) parts.push(evaluationPredicate(f, bind));
  const tagged = (tags: readonly string[]) => `SELECT sample_ord FROM sample_tags WHERE dataset_id = $1 AND list_contains(${bind(tags)}::VARCHAR[], tag)`;
  // An empty list binds no type: it matches nothing, as `categories: []` does.
  if (f.tags !== undefined) parts.push(f.tags.length === 0 ? 'false' : `ord IN (${tagged(f.tags)})`);
  if (f.tagsAll?.length) parts.push(`ord IN (${tagged(f.tagsAll)} GROUP BY sample_ord HAVING count(DISTINCT tag) = ${bind(f.tagsAll.length)}::INTEGER)`);
  if (f.tagsNone?.length) parts.push(`ord NOT IN (${tagged(f.tagsNone)})`);
  for (const m of f.metadata ?? []) parts.push(metadataConditionSql(m, params));
  if (f.also) parts.push(...filterPredicates(f.also, params));
  return parts;
}

/**
 * Samples with an object of the evaluation that meets every condition given. Outcomes alone read
 * the per-sample counts; error kinds or categories read the objects' rows: a TP or FP is a
 * prediction's row (its category is the prediction's), a missed object (FN, `missed`) a ground
 * truth's. Codes and column names come from fixed lists, never from input.
 */
function evaluationPredicate(f: SampleQueryFilter, bind: (v: Param) => string): string {
  const has = f.evaluationHas ?? ['tp', 'fp', 'fn'];
  if (f.evaluationErrors === undefined && f.evaluationCategoryIds === undefined) {
    return `ord IN (SELECT sample_ord FROM eval_samples WHERE evaluation_id = ${bind(f.evaluationId!)} AND (${has.map((o) => `${o} > 0`).join(' OR ')}))`;
  }
  const outcomes = has.filter((o) => o !== 'fn').map((o) => DETECTION_OUTCOMES.indexOf(o));
  const kinds = f.evaluationErrors?.filter((k) => k !== 'missed').map((k) => ERROR_KINDS.indexOf(k));
  const predictions = outcomes.length > 0 && (kinds === undefined || kinds.length > 0);
  const missed = has.includes('fn') && (f.evaluationErrors === undefined || f.evaluationErrors.includes('missed'));
  // Nothing can match: no statement, and no value bound that it would not use.
  if (!predictions && !missed) return 'false';
  const evaluation = bind(f.evaluationId!);
  const category = f.evaluationCategoryIds === undefined ? '' :
    ` AND ord IN (SELECT ord FROM annotations WHERE dataset_id = $1 AND ${f.evaluationCategoryIds.length === 0 ? 'false' : `(${f.evaluationCategoryIds.map((id) => `category_id = ${bind(id)}::BIGINT`).join(' OR ')})`})`;
  const sides: string[] = [];
  if (predictions) {
    sides.push(`SELECT sample_ord FROM eval_detections WHERE evaluation_id = ${evaluation} AND outcome IN (${outcomes.join(', ')})` +
      `${kinds === undefined ? '' : ` AND error IN (${kinds.join(', ')})`}${category}`);
  }
  if (missed) sides.push(`SELECT sample_ord FROM eval_ground_truth WHERE evaluation_id = ${evaluation} AND outcome = ${GROUND_TRUTH_OUTCOMES.indexOf('fn')}${category}`);
  return `ord IN (${sides.join(' UNION ALL ')})`;
}

/** Every predicate of a filter on the samples table, its annotation conditions as one subquery. */
function filterPredicates(f: SampleQueryFilter, params: Param[]): string[] {
  const parts = samplePredicates(f, params);
  const ann = annotationConditionSql(f, params);
  if (ann.length > 0) parts.push(`ord IN (SELECT sample_ord FROM annotations WHERE dataset_id = $1 AND ${ann.join(' AND ')})`);
  return parts;
}

/**
 * WHERE clause (after `dataset_id = $1`, on `samples`, whose `ord` it tests unqualified) and its
 * values, appended to `params` (which holds the dataset id first): the listing's, the object
 * view's (db/objects.ts), the aggregations' (db/aggregations.ts) and the export's (db/export.ts).
 */
export function sampleWhereClause(f: SampleQueryFilter, params: Param[]): string {
  const parts = filterPredicates(f, params);
  return parts.length ? ` AND ${parts.join(' AND ')}` : '';
}

/**
 * The selected samples as a subquery for a join, one row per sample with its ord as `sel_ord`; ''
 * without a filter. A filter on annotations alone is answered from the annotations alone: the
 * distinct ords of the matching annotations, joined, cost about half of `ord IN (…)` over samples
 * (10 against 16 ms CPU for `category=person` at train2017 scale, docs/curation.md).
 */
export function selectedOrds(f: SampleQueryFilter, params: Param[]): string {
  if (!hasFilter(f)) return '';
  const mark = params.length;
  const ann = samplePredicates(f, params).length === 0 ? annotationConditionSql(f, params) : [];
  if (ann.length > 0) return `SELECT DISTINCT sample_ord AS sel_ord FROM annotations WHERE dataset_id = $1 AND ${ann.join(' AND ')}`;
  params.length = mark;
  return `SELECT ord AS sel_ord FROM samples WHERE dataset_id = $1${sampleWhereClause(f, params)}`;
}

export async function countSampleRows(db: Database, datasetId: string, f: SampleQueryFilter): Promise<number> {
  const params: Param[] = [datasetId];
  const where = sampleWhereClause(f, params);
  return Number((await db.query(`SELECT count(*) AS n FROM samples WHERE dataset_id = $1${where}`, params))[0]?.n ?? 0);
}

/**
 * One window of samples in file order. Fetches `limit + 1` rows so the caller learns whether
 * more exist, and returns rows in ascending order whatever the direction.
 */
export async function listSampleRows(db: Database, datasetId: string, f: SampleQueryFilter, w: SampleWindow): Promise<Row[]> {
  const streamed = await streamedOrds(db, datasetId, f, w);
  if (streamed) return rowsByOrds(db, datasetId, streamed);
  const annotationsOnly = annotationsOnlyWindow(datasetId, f, w);
  if (annotationsOnly) return inFileOrder(await db.query(annotationsOnly.sql, annotationsOnly.params));
  const params: Param[] = [datasetId];
  const where = sampleWhereClause(f, params);
  const bind = binder(params, '::INTEGER');
  if (!hasFilter(f) && (w.kind !== 'before' || w.beforeOrd !== null)) {
    // Dense ords: an unfiltered window is a range, as cheap at offset 100,000 as at 0, and the
    // first keyset page is not a top-N over the whole dataset (page 2,000 costs what page 1 costs).
    // A range needs no ORDER BY in SQL (a sort there costs more than the scan): sorted here.
    const start = w.kind === 'offset' ? w.offset : w.kind === 'after' ? (w.afterOrd ?? -1) + 1 : Math.max(0, w.beforeOrd! - w.limit - 1);
    const end = w.kind === 'before' ? w.beforeOrd! : start + w.limit + 1;
    const sql = `SELECT ${SAMPLE_COLUMNS} FROM samples WHERE dataset_id = $1${where} AND ord >= ${bind(start)} AND ord < ${bind(end)}`;
    return inFileOrder(await db.query(sql, params));
  }
  const { cond, order, tail } = windowClauses('ord', w, bind);
  const rows = await db.query(`SELECT ${SAMPLE_COLUMNS} FROM samples WHERE dataset_id = $1${where}${cond} ORDER BY ${order}${tail}`, params);
  return w.kind === 'before' ? rows.reverse() : rows;
}

/** Distinct samples a streamed window reads ahead for at most (offset + limit + 1); more takes the exact query. */
const STREAM_MAX_SAMPLES = 5_000;
/** Annotation rows read per sample wanted, at first (COCO averages 7 a sample); ×4 on each retry. */
const STREAM_ROWS_PER_SAMPLE = 8;
const STREAM_MAX_ROWS = 400_000;

/**
 * The sample ords of a forward window filtered on annotations alone (e.g. `category=person`), read
 * as a stream: the annotations table lies in sample order, so the first matching rows in table
 * order, without ORDER BY or DISTINCT, already name the first matching samples, and DuckDB stops
 * at the LIMIT (0.7 ms) instead of ranking every match (8 ms for person on train2017). DuckDB
 * keeps table order for a plain filtered scan (preserve_insertion_order), and the order is checked
 * here anyway: rows out of order, a backward window, or a window too far in make it null, and the
 * exact query answers.
 */
async function streamedOrds(db: Database, datasetId: string, f: SampleQueryFilter, w: SampleWindow): Promise<number[] | null> {
  const params: Param[] = [datasetId];
  if (w.kind === 'before' || samplePredicates(f, params).length > 0) return null;
  const ann = annotationConditionSql(f, params);
  if (ann.length === 0) return null;
  const skip = w.kind === 'offset' ? w.offset : 0;
  const wanted = skip + w.limit + 1;
  if (wanted > STREAM_MAX_SAMPLES) return null;
  const bind = binder(params, '::INTEGER');
  if (w.kind === 'after' && w.afterOrd !== null) ann.push(`sample_ord > ${bind(w.afterOrd)}`);
  const sql = `SELECT sample_ord FROM annotations WHERE dataset_id = $1 AND ${ann.join(' AND ')} LIMIT $${params.length + 1}::INTEGER`;
  for (let rows = wanted * STREAM_ROWS_PER_SAMPLE; rows <= STREAM_MAX_ROWS; rows *= 4) {
    const found = await db.query(sql, [...params, rows]);
    const ords: number[] = [];
    let last = -1;
    for (const r of found) {
      const ord = r.sample_ord as number;
      if (ord < last) return null;
      if (ord !== last) ords.push(ord);
      last = ord;
    }
    // Enough samples, or every match read.
    if (ords.length >= wanted || found.length < rows) return ords.slice(skip, wanted);
  }
  return null;
}

const ROWS_BY_ORDS = `SELECT ${SAMPLE_COLUMNS} FROM samples
  WHERE dataset_id = $1 AND ord BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], ord)`;

/** Samples by ord (ascending ords), in file order. */
async function rowsByOrds(db: Database, datasetId: string, ords: number[]): Promise<Row[]> {
  if (ords.length === 0) return [];
  return inFileOrder(await db.query(ROWS_BY_ORDS, [datasetId, ords[0]!, ords.at(-1)!, ords]));
}

const inFileOrder = (rows: Row[]): Row[] => rows.sort((a, b) => (a.ord as number) - (b.ord as number));

/**
 * A window filtered on annotations alone (e.g. a category) that streamedOrds does not serve
 * (backward, or far in): the page's ords are ranked in the annotations table alone, which costs
 * less than building the set of every matching sample first (12 ms against 45 ms for
 * `category=person` on train2017). Null when the filter also tests samples' own columns.
 */
function annotationsOnlyWindow(datasetId: string, f: SampleQueryFilter, w: SampleWindow): { sql: string; params: Param[] } | null {
  const params: Param[] = [datasetId];
  if (samplePredicates(f, params).length > 0) return null;
  const ann = annotationConditionSql(f, params);
  if (ann.length === 0) return null;
  const { cond, order, tail } = windowClauses('sample_ord', w, binder(params, '::INTEGER'));
  const ords = `SELECT DISTINCT sample_ord FROM annotations WHERE dataset_id = $1 AND ${ann.join(' AND ')}${cond} ORDER BY ${order}${tail}`;
  return { sql: `SELECT ${SAMPLE_COLUMNS} FROM samples WHERE dataset_id = $1 AND ord IN (${ords})`, params };
}

export async function getSampleRow(db: Database, datasetId: string, imageId: number): Promise<Row | undefined> {
  return (await db.query(GET_SAMPLE, [datasetId, imageId]))[0];
}

export async function getSampleRows(db: Database, datasetId: string, imageIds: readonly number[]): Promise<Row[]> {
  return db.query(GET_SAMPLES_BY_IDS, [datasetId, imageIds]);
}

/**
 * File names of the samples around one (by ord), found by its image id, in one query: a grid asks
 * for the thumbnails of a page of neighbours at once, so one miss prefetches the rest.
 */
const FILE_NAMES_AROUND = `SELECT image_id, file_name FROM samples
  WHERE dataset_id = $1 AND ord BETWEEN
    (SELECT ord FROM samples WHERE dataset_id = $1 AND image_id = $2::BIGINT) - $3::INTEGER AND
    (SELECT ord FROM samples WHERE dataset_id = $1 AND image_id = $2::BIGINT) + $3::INTEGER`;

export async function fileNamesAround(db: Database, datasetId: string, imageId: number, radius: number): Promise<Row[]> {
  return db.query(FILE_NAMES_AROUND, [datasetId, imageId, radius]);
}
