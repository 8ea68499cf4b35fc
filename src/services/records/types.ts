/**
 * Format-neutral records: what every format reader produces and the dataset writer stores. Field
 * names follow COCO's, the richest of the formats; a reader leaves what its format lacks null.
 */

export interface ImageRecord {
  id: number;
  fileName: string;
  width: number | null;
  height: number | null;
  license: number | null;
  cocoUrl: string | null;
  flickrUrl: string | null;
  dateCaptured: string | null;
  /** The image's split when the format says (YOLO and VOC folders); null: the ingest's own split. */
  split?: string | null;
  /** Keys the format does not define (kept as they are, stored as JSON), and values of defined keys read leniently. */
  extra: Record<string, unknown> | null;
  /** IMAGE_QUIRKS flags (quirks.ts); 0 when absent. */
  quirks?: number;
}

export type SegmentationKind = 'polygon' | 'rle' | 'compressed_rle' | 'none';

export interface AnnotationRecord {
  id: number;
  imageId: number;
  categoryId: number;
  bbox: [number, number, number, number] | null;
  area: number | null;
  isCrowd: boolean;
  segmentationKind: SegmentationKind;
  polygonCount: number;
  /** Polygon vertices (pairs of coordinates); 0 for RLE. */
  pointCount: number;
  /** The segmentation as compact JSON text, exactly as the file had it. */
  segmentation: string | null;
  numKeypoints: number | null;
  keypoints: string | null;
  /** Prediction files carry a confidence; ground truth does not. */
  score: number | null;
  extra: Record<string, unknown> | null;
  /** ANNOTATION_QUIRKS flags (quirks.ts); 0 when absent. */
  quirks?: number;
}

export interface CategoryRecord {
  id: number;
  name: string;
  supercategory: string | null;
  extra: Record<string, unknown> | null;
}

export interface LicenseRecord {
  /** null: the entry has no integer id (or is not an object), so nothing can refer to it. */
  id: number | null;
  name: string | null;
  url: string | null;
}

/** A data quirk that did not stop the ingest: counted, kept on the dataset, a few examples shown. */
export interface Warning {
  code: string;
  count: number;
  message: string;
  examples: (string | number)[];
}
