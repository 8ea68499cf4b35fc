import type { Database, Row } from './connection.js';

/**
 * Annotations of many samples of one dataset in one query (the DataLoader batch). The table is
 * sorted by (dataset_id, sample_ord), so the ord range lets zone maps skip to the rows; the list
 * keeps only the samples asked for.
 */
const ANNOTATIONS_OF_SAMPLES = `SELECT a.dataset_id, a.sample_ord, a.ord, a.annotation_id, a.image_id, a.category_id, c.name AS category_name,
    a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area, a.is_crowd, a.segmentation_kind, a.polygon_count, a.point_count,
    a.num_keypoints, a.score, a.source, a.extra
  FROM annotations a
  LEFT JOIN categories c ON c.dataset_id = a.dataset_id AND c.category_id = a.category_id
  WHERE a.dataset_id = $1 AND a.sample_ord BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], a.sample_ord)
  ORDER BY a.sample_ord, a.ord`;

export async function annotationRowsOfSamples(db: Database, datasetId: string, sampleOrds: readonly number[]): Promise<Row[]> {
  if (sampleOrds.length === 0) return [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const o of sampleOrds) {
    if (o < lo) lo = o;
    if (o > hi) hi = o;
  }
  return db.query(ANNOTATIONS_OF_SAMPLES, [datasetId, lo, hi, sampleOrds]);
}

/** Polygons / RLE / keypoints of some annotations (by ord), for drawing one sample. */
const SHAPES = `SELECT ord, segmentation, keypoints FROM annotation_shapes
  WHERE dataset_id = $1 AND ord BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], ord)`;

export async function shapeRows(db: Database, datasetId: string, ords: readonly number[]): Promise<Row[]> {
  if (ords.length === 0) return [];
  return db.query(SHAPES, [datasetId, Math.min(...ords), Math.max(...ords), ords]);
}
