import type { Param, Row, Snapshot } from './connection.js';
import { sampleWhereClause, type SampleQueryFilter } from './samples.js';

/**
 * The SELECTs of an export (services/export/), each streamed in file order from one snapshot of
 * the dataset. Which samples: the one sample filter's WHERE (db/samples.ts). Which annotations: one
 * label set (0: the ground truth, else a prediction run) of those samples, optionally only some
 * categories. Shapes come from `annotation_shapes` (only there when the ingest stored them).
 */
export interface ExportSelection {
  datasetId: string;
  filter: SampleQueryFilter;
  labelSet: number;
  /** Only annotations of these categories (the dataset's ids); undefined: every category. */
  categoryIds?: readonly number[];
}

/** `$1` is the dataset id; values bound from $2. Empty when nothing narrows the dataset's samples. */
function sampleCondition(s: ExportSelection, params: Param[]): string {
  const where = sampleWhereClause(s.filter, params);
  return where === '' ? '' : ` AND a.sample_ord IN (SELECT ord FROM samples WHERE dataset_id = $1${where})`;
}

function annotationWhere(s: ExportSelection, params: Param[]): string {
  let sql = `a.dataset_id = $1 AND a.label_set = ${bind(params, s.labelSet)}::INTEGER`;
  // Constants, as the sample filter's own category test: DuckDB filters them inside the scan.
  if (s.categoryIds) sql += s.categoryIds.length === 0 ? ' AND false' : ` AND a.category_id IN (${s.categoryIds.map((id) => `${bind(params, id)}::BIGINT`).join(', ')})`;
  return sql + sampleCondition(s, params);
}

function bind(params: Param[], v: Param): string {
  params.push(v);
  return `$${params.length}`;
}

export interface ExportQuery {
  sql: string;
  params: Param[];
}

export function imagesQuery(s: ExportSelection): ExportQuery {
  const params: Param[] = [s.datasetId];
  const where = sampleWhereClause(s.filter, params);
  return {
    sql: `SELECT image_id::DOUBLE AS image_id, file_name, width::DOUBLE AS width, height::DOUBLE AS height, license_id::DOUBLE AS license_id,
        coco_url, flickr_url, date_captured, metadata::VARCHAR AS metadata
      FROM samples WHERE dataset_id = $1${where} ORDER BY ord`,
    params,
  };
}

/**
 * Annotations in file order (`ord`), with their shapes when the dataset stored any (`withShapes`:
 * the join is left out otherwise, so a dataset without shapes does not pay for it). Numbers as
 * DOUBLE (ids fit: they are safe integers) and the rest as text: the columns the export reads whole.
 */
export function annotationsQuery(s: ExportSelection, withShapes: boolean): ExportQuery {
  const params: Param[] = [s.datasetId];
  const where = annotationWhere(s, params);
  const shapes = withShapes ? 'sh.segmentation, sh.keypoints' : 'NULL::VARCHAR AS segmentation, NULL::VARCHAR AS keypoints';
  const join = withShapes ? ' LEFT JOIN (SELECT ord, segmentation, keypoints FROM annotation_shapes WHERE dataset_id = $1) sh ON sh.ord = a.ord' : '';
  return {
    sql: `SELECT a.annotation_id::DOUBLE AS annotation_id, a.image_id::DOUBLE AS image_id, a.category_id::DOUBLE AS category_id,
        a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area, a.is_crowd::DOUBLE AS is_crowd, a.num_keypoints::DOUBLE AS num_keypoints,
        a.score, a.extra, ${shapes}
      FROM annotations a${join} WHERE ${where} ORDER BY a.ord`,
    params,
  };
}

/**
 * YOLO labels: the boxes of each sample with the sample's size, grouped by sample (in file order)
 * so a label file is written whole before the next; samples without annotations come with a row of
 * NULLs (background images get an empty label file).
 */
export function yoloRowsQuery(s: ExportSelection): ExportQuery {
  const params: Param[] = [s.datasetId];
  const where = sampleWhereClause(s.filter, params);
  const ann = annotationWhere(s, params);
  return {
    sql: `SELECT s.ord AS sample_ord, s.image_id, s.file_name, s.split, s.width, s.height,
        a.category_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.is_crowd
      FROM (SELECT ord, image_id, file_name, split, width, height FROM samples WHERE dataset_id = $1${where}) s
      LEFT JOIN (SELECT a.sample_ord, a.ord, a.category_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.is_crowd FROM annotations a WHERE ${ann}) a
        ON a.sample_ord = s.ord
      ORDER BY s.ord, a.ord`,
    params,
  };
}

/** How many samples and annotations an export holds, and how many annotations lack a shape they had. */
export async function exportCounts(db: Snapshot, s: ExportSelection): Promise<{ images: number; annotations: number; shapesMissing: number; shapesStored: boolean }> {
  const imageParams: Param[] = [s.datasetId];
  const imageWhere = sampleWhereClause(s.filter, imageParams);
  const [images] = await db.query(`SELECT count(*) AS n FROM samples WHERE dataset_id = $1${imageWhere}`, imageParams);
  const params: Param[] = [s.datasetId];
  const where = annotationWhere(s, params);
  const [ann] = await db.query(
    `SELECT count(*) AS n,
        count(*) FILTER (WHERE (a.segmentation_kind <> 'none' OR a.num_keypoints IS NOT NULL) AND sh.ord IS NULL) AS missing,
        count(sh.ord) AS stored
      FROM annotations a LEFT JOIN (SELECT ord FROM annotation_shapes WHERE dataset_id = $1) sh ON sh.ord = a.ord
      WHERE ${where}`,
    params,
  );
  return { images: Number(images!.n), annotations: Number(ann!.n), shapesMissing: Number(ann!.missing), shapesStored: Number(ann!.stored) > 0 };
}

const LICENSES = `SELECT license_id, name, url FROM licenses WHERE dataset_id = $1 ORDER BY license_id`;

export async function licenseRows(db: Snapshot, datasetId: string): Promise<Row[]> {
  return db.query(LICENSES, [datasetId]);
}

/** The categories an export lists, by id (with `categoryIds`, only those). */
export async function exportCategoryRows(db: Snapshot, datasetId: string, categoryIds?: readonly number[]): Promise<Row[]> {
  const rows = await db.query(`SELECT category_id, name, supercategory, extra::VARCHAR AS extra FROM categories WHERE dataset_id = $1 ORDER BY category_id`, [datasetId]);
  if (!categoryIds) return rows;
  const wanted = new Set(categoryIds);
  return rows.filter((r) => wanted.has(r.category_id as number));
}
