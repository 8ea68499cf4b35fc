import type { Param } from './connection.js';

/**
 * Conditions on one annotation row, the annotation-level half of the sample filter. A sample
 * matches when one of its annotations meets all of them together (as FiftyOne's filter_labels
 * does), never when different annotations each meet one. Exported for views of annotation rows
 * (the object-level view), so both apply the same conditions with the same SQL.
 */
export interface AnnotationConditions {
  /** Category ids (the dataset's own): in one of them. */
  categoryIds?: readonly number[];
  /** 0: the ground truth (the default when any condition is given); another label set: that prediction run. */
  labelSet?: number;
  isCrowd?: boolean;
  /** Box area, w × h in px². */
  minBboxArea?: number;
  maxBboxArea?: number;
  /** The `area` of the file (a segmentation's area in COCO). */
  minArea?: number;
  maxArea?: number;
  /** Box aspect ratio, w / h (a box of height 0 has none and never matches). */
  minAspectRatio?: number;
  maxAspectRatio?: number;
  /** Score of a prediction (ground truth has none and never matches). */
  minConfidence?: number;
  maxConfidence?: number;
  /** Tagged with any of these (`[]`: matches nothing); the tag subquery takes the dataset id as `$1`. */
  annotationTags?: readonly string[];
}

export const ANNOTATION_CONDITION_KEYS = [
  'categoryIds', 'labelSet', 'isCrowd', 'minBboxArea', 'maxBboxArea', 'minArea', 'maxArea',
  'minAspectRatio', 'maxAspectRatio', 'minConfidence', 'maxConfidence', 'annotationTags',
] as const satisfies readonly (keyof AnnotationConditions)[];

/**
 * The SQL predicates of `c` on the `annotations` table (columns prefixed by `alias.` when given),
 * values appended to `params` and bound; empty when `c` asks nothing. The label set is always
 * named once there is a condition: a category alone selects ground-truth objects, not predictions.
 */
export function annotationConditionSql(c: AnnotationConditions, params: Param[], alias = ''): string[] {
  const col = (name: string) => (alias ? `${alias}.${name}` : name);
  const bind = (v: Param, cast: string) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
  const parts: string[] = [];
  if (c.categoryIds !== undefined) {
    // Constants, not a subquery of categories: DuckDB filters a constant comparison inside the scan.
    parts.push(c.categoryIds.length === 0 ? 'false' : `(${c.categoryIds.map((id) => `${col('category_id')} = ${bind(id, 'BIGINT')}`).join(' OR ')})`);
  }
  if (c.isCrowd !== undefined) parts.push(`${col('is_crowd')} = ${bind(c.isCrowd, 'BOOLEAN')}`);
  const box = `${col('bbox_w')} * ${col('bbox_h')}`;
  if (c.minBboxArea !== undefined) parts.push(`${box} >= ${bind(c.minBboxArea, 'DOUBLE')}`);
  if (c.maxBboxArea !== undefined) parts.push(`${box} <= ${bind(c.maxBboxArea, 'DOUBLE')}`);
  if (c.minArea !== undefined) parts.push(`${col('area')} >= ${bind(c.minArea, 'DOUBLE')}`);
  if (c.maxArea !== undefined) parts.push(`${col('area')} <= ${bind(c.maxArea, 'DOUBLE')}`);
  // As a product, not a quotient: no division by a zero height, and no rounding.
  const h = col('bbox_h');
  if (c.minAspectRatio !== undefined) parts.push(`${h} > 0 AND ${col('bbox_w')} >= ${bind(c.minAspectRatio, 'DOUBLE')} * ${h}`);
  if (c.maxAspectRatio !== undefined) parts.push(`${h} > 0 AND ${col('bbox_w')} <= ${bind(c.maxAspectRatio, 'DOUBLE')} * ${h}`);
  if (c.minConfidence !== undefined) parts.push(`${col('score')} >= ${bind(c.minConfidence, 'DOUBLE')}`);
  if (c.maxConfidence !== undefined) parts.push(`${col('score')} <= ${bind(c.maxConfidence, 'DOUBLE')}`);
  if (c.annotationTags?.length === 0) parts.push('false');
  else if (c.annotationTags !== undefined) {
    parts.push(`${col('ord')} IN (SELECT ord FROM annotation_tags WHERE dataset_id = $1 AND list_contains(${bind(c.annotationTags, 'VARCHAR[]')}, tag))`);
  }
  if (parts.length > 0 || c.labelSet !== undefined) parts.unshift(`${col('label_set')} = ${bind(c.labelSet ?? 0, 'INTEGER')}`);
  return parts;
}
