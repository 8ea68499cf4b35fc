import type { Param, Row, Snapshot } from './connection.js';
import { jsonNumber, jsonObject, jsonString, type JsonField } from './json-text.js';
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

/**
 * One column, `text`: each row's JSON object as DuckDB writes it (json-text.ts), in file order
 * (`ord`). The object is built after the sort, in an outer SELECT of the sorted rows, which keeps
 * their order (DuckDB's order preservation): the sort carries the narrow columns, not the text.
 */
function textQuery(sorted: string, line: string, params: Param[]): ExportQuery {
  return { sql: `SELECT ${line} AS text FROM (${sorted}) r`, params };
}

/**
 * The images as COCO image objects: `id`, `file_name`, then each field the image has (none is
 * written as null) unless its metadata holds that key (a value that did not fit the column,
 * written once, from there), then the metadata's keys.
 */
export function imagesText(s: ExportSelection): ExportQuery {
  const params: Param[] = [s.datasetId];
  const where = sampleWhereClause(s.filter, params);
  const column = (key: string, name: string, text = `r.${name}::VARCHAR`): JsonField => ({ key, value: text, nullWhen: `r.${name}` });
  const line = jsonObject(
    [`'{"id":'`, 'r.image_id', `',"file_name":'`, jsonString('r.file_name')],
    [
      column('width', 'width'), column('height', 'height'), column('license', 'license_id'), column('coco_url', 'coco_url', jsonString('r.coco_url')),
      column('date_captured', 'date_captured', jsonString('r.date_captured')), column('flickr_url', 'flickr_url', jsonString('r.flickr_url')),
    ],
    'r.metadata',
  );
  const sorted = `SELECT image_id, file_name, width, height, license_id, coco_url, date_captured, flickr_url, metadata
    FROM samples WHERE dataset_id = $1${where} ORDER BY ord`;
  return textQuery(sorted, line, params);
}

/** `[x,y,w,h]`; a box is stored whole or not at all. */
const box: JsonField = {
  key: 'bbox',
  value: `CASE WHEN r.bbox_x IS NULL THEN NULL ELSE concat('[', ${jsonNumber('r.bbox_x')}, ',', ${jsonNumber('r.bbox_y')}, ',', ${jsonNumber('r.bbox_w')}, ',', ${jsonNumber('r.bbox_h')}, ']') END`,
  nullWhen: 'r.bbox_x',
};

/**
 * The annotations' text: `line` over the selection's annotations in file order, with their
 * shapes when the dataset stored any (`withShapes`: the join is left out otherwise, so a dataset
 * without shapes does not pay for it).
 */
function annotationsTextQuery(s: ExportSelection, withShapes: boolean, line: string): ExportQuery {
  const params: Param[] = [s.datasetId];
  const where = annotationWhere(s, params);
  const shapes = withShapes ? 'sh.segmentation, sh.keypoints' : 'NULL::VARCHAR AS segmentation, NULL::VARCHAR AS keypoints';
  const join = withShapes ? ' LEFT JOIN (SELECT ord, segmentation, keypoints FROM annotation_shapes WHERE dataset_id = $1) sh ON sh.ord = a.ord' : '';
  const sorted = `SELECT a.annotation_id, a.image_id, a.category_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area, a.is_crowd, a.num_keypoints, a.score, a.extra, ${shapes}
    FROM annotations a${join} WHERE ${where} ORDER BY a.ord`;
  return textQuery(sorted, line, params);
}

/**
 * Ground-truth annotations as COCO annotation objects: `id`, `image_id`, `category_id`, then
 * `bbox`, `area`, `iscrowd`, `segmentation` (the stored polygons or RLE, or `[]` as box-only
 * exports write it: the export's warning counts shapes the ingest did not keep), `num_keypoints`,
 * `keypoints`, `score` when the row has them, each unless the row's extra keys hold it, then the
 * extra keys.
 */
export function annotationsText(s: ExportSelection, withShapes: boolean): ExportQuery {
  const line = jsonObject(
    [`'{"id":'`, 'r.annotation_id', `',"image_id":'`, 'r.image_id', `',"category_id":'`, 'r.category_id'],
    [
      box,
      { key: 'area', value: jsonNumber('r.area'), nullWhen: 'r.area' },
      { key: 'iscrowd', value: "CASE WHEN r.is_crowd THEN '1' ELSE '0' END" },
      { key: 'segmentation', value: "coalesce(r.segmentation, '[]')" },
      { key: 'num_keypoints', value: 'r.num_keypoints::VARCHAR', nullWhen: 'r.num_keypoints' },
      { key: 'keypoints', value: 'r.keypoints', nullWhen: 'r.keypoints' },
      { key: 'score', value: jsonNumber('r.score'), nullWhen: 'r.score' },
    ],
    'r.extra',
  );
  return annotationsTextQuery(s, withShapes, line);
}

/** A prediction run's detections in its file's order, as pycocotools' loadRes reads them. */
export function resultsText(s: ExportSelection, withShapes: boolean): ExportQuery {
  const line = `concat('{"image_id":', r.image_id, ',"category_id":', r.category_id, CASE WHEN r.bbox_x IS NULL THEN NULL ELSE ',"bbox":' END, ${box.value},
    ',"score":', coalesce(${jsonNumber('r.score')}, 'null'), CASE WHEN r.segmentation IS NULL THEN NULL ELSE ',"segmentation":' END, r.segmentation, '}')`;
  return annotationsTextQuery(s, withShapes, line);
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
