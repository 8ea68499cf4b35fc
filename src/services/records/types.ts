/** Records the COCO reader hands out, one per array element, as soon as the element closes. */

export interface CocoImage {
  id: number;
  fileName: string;
  width: number | null;
  height: number | null;
  license: number | null;
  cocoUrl: string | null;
  flickrUrl: string | null;
  dateCaptured: string | null;
  /** Keys COCO does not define (kept as they are, stored as JSON), and values of defined keys read leniently. */
  extra: Record<string, unknown> | null;
  /** IMAGE_QUIRKS flags (quirks.ts). */
  quirks: number;
}

export type SegmentationKind = 'polygon' | 'rle' | 'compressed_rle' | 'none';

export interface CocoAnnotation {
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
  /** ANNOTATION_QUIRKS flags (quirks.ts). */
  quirks: number;
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory: string | null;
  extra: Record<string, unknown> | null;
}

export interface CocoLicense {
  /** null: the entry has no integer id (or is not an object), so nothing can refer to it. */
  id: number | null;
  name: string | null;
  url: string | null;
}

export type CocoSection = 'info' | 'licenses' | 'images' | 'annotations' | 'categories';

export interface CocoSink {
  section(name: CocoSection): void;
  info(info: Record<string, unknown>): void;
  license(license: CocoLicense): void;
  image(image: CocoImage): void;
  annotation(annotation: CocoAnnotation): void;
  category(category: CocoCategory): void;
}
