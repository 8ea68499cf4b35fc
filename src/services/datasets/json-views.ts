import type { Evaluation } from '../evaluation/evaluations.js';
import type { PredictionRun } from '../predictions/predictions.js';
import type { AccessService } from '../access.js';
import type { Category, Dataset } from './datasets.js';
import type { Annotation, Sample } from './samples.js';
import type { ThumbnailSize } from '../images/thumbnails.js';

/**
 * The snake_case JSON shapes of docs/contract.md, shared by REST and the CLI's --json so
 * both print the same objects.
 */

/**
 * The path (and query) of an image URL handed out by the API: REST samples, GraphQL
 * `thumbnailUrl`/`imageUrl` and the CLI all build theirs here, so with DATAVISOR_API_TOKEN set
 * every one carries its signature (`exp`, `sig`) and works in `<img>` without the token.
 */
export function imagePath(datasetId: string, sampleId: number, size: ThumbnailSize | 'original', access: AccessService): string {
  return `/images/${encodeURIComponent(datasetId)}/${sampleId}?size=${size}${access.imageQuerySuffix(datasetId, sampleId, size)}`;
}

/**
 * The path of an object's crop (rest/images.ts): it names the dataset revision it was made at, so
 * that the crop may be cached for good while the dataset is unchanged (docs/curation.md, "Crops").
 * Signed as `objects/<ord>` with DATAVISOR_API_TOKEN set.
 */
export function objectCropPath(datasetId: string, sampleId: number, ord: number, revision: number, size: ThumbnailSize, access: AccessService): string {
  return `/images/${encodeURIComponent(datasetId)}/${sampleId}/objects/${ord}?size=${size}&rev=${revision}${access.imageQuerySuffix(datasetId, `objects/${ord}`, size)}`;
}

export function datasetJson(d: Dataset) {
  return {
    id: d.id,
    name: d.name,
    format: d.format,
    source_path: d.sourcePath,
    image_dir: d.imageDir,
    split: d.split,
    image_count: d.imageCount,
    annotation_count: d.annotationCount,
    category_count: d.categoryCount,
    created_at: d.createdAt.toISOString(),
    warnings: d.warnings,
    info: d.info,
    plugin_stats: d.pluginStats,
    bytes: d.bytes,
    ingest_seconds: d.ingestSeconds,
    revision: d.revision,
  };
}

export function categoryJson(c: Category) {
  return {
    id: c.categoryId,
    name: c.name,
    supercategory: c.supercategory,
    annotation_count: c.annotationCount,
    image_count: c.imageCount,
  };
}

/** `baseUrl` is the origin the client reached us at, so the URLs work as they are in `<img>`. */
export function sampleJson(s: Sample, baseUrl: string, access: AccessService) {
  const thumb = imagePath(s.datasetId, s.id, 'medium', access);
  return {
    id: s.id,
    dataset_id: s.datasetId,
    file_name: s.fileName,
    width: s.width,
    height: s.height,
    split: s.split,
    annotation_count: s.annotationCount,
    file_missing: s.fileMissing,
    license_id: s.licenseId,
    coco_url: s.cocoUrl,
    date_captured: s.dateCaptured,
    metadata: s.metadata,
    thumbnail_url: baseUrl + thumb,
    image_url: baseUrl + imagePath(s.datasetId, s.id, 'original', access),
    thumbnail_path: thumb,
  };
}

export function annotationJson(a: Annotation) {
  return {
    id: a.id,
    dataset_id: a.datasetId,
    sample_id: a.sampleId,
    category_id: a.categoryId,
    category_name: a.categoryName,
    bbox_x: a.bbox?.x ?? null,
    bbox_y: a.bbox?.y ?? null,
    bbox_w: a.bbox?.w ?? null,
    bbox_h: a.bbox?.h ?? null,
    area: a.area,
    is_crowd: a.isCrowd,
    source: a.source,
    confidence: a.score,
    segmentation_kind: a.segmentationKind,
    segmentation: a.segmentation,
    num_keypoints: a.numKeypoints,
    keypoints: a.keypoints,
  };
}

/** A prediction run as REST and the CLI print it. */
export function predictionRunJson(r: PredictionRun) {
  return { name: r.name, prediction_count: r.predictionCount, source_path: r.sourcePath, created_at: r.createdAt.toISOString() };
}

/** An evaluation as REST and the CLI print it (the contract's Evaluation, and more). */
export function evaluationJson(e: Evaluation) {
  return {
    id: e.id,
    dataset_id: e.datasetId,
    predictions: e.predictions,
    iou_type: e.iouType,
    state: e.stale ? 'stale' : 'current',
    metrics: e.metrics,
    per_category: e.perCategory,
    totals: e.totals,
    errors: e.errors,
    confusion: e.confusion,
    created_at: e.createdAt.toISOString(),
    seconds: e.seconds,
  };
}
