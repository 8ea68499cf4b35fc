import type { RecordSection } from '../records/events.js';
import type { Warning } from '../records/types.js';
import { BadInputError } from '../errors.js';
import { DEFAULT_FORMAT, FORMAT_CHOICES } from './formats/registry.js';

/**
 * The stages of an ingest (and of a prediction import: `parsing_predictions`), in order: the one
 * list REST, GraphQL and the CLI name them from.
 */
export const INGEST_STAGES = ['categories', 'parsing_images', 'parsing_annotations', 'parsing_predictions', 'thumbnails', 'complete', 'error'] as const;
export type IngestStage = (typeof INGEST_STAGES)[number];

/** The stage each section of a reader's records is reported as. */
export const SECTION_STAGE: Record<RecordSection, IngestStage> = {
  images: 'parsing_images',
  annotations: 'parsing_annotations',
  categories: 'categories',
};

export interface IngestRequest {
  annotationPath: string;
  /** Optional where the format says where its images are. */
  imageDir?: string | null;
  datasetName?: string | null;
  /** One of FORMAT_CHOICES; default `auto` (told from the input). */
  format?: string | null;
  split?: string | null;
  /** Keep polygons, RLE masks and keypoints for drawing (default: the DATAVISOR_STORE_SHAPES setting). */
  storeShapes?: boolean | null;
  /** An existing dataset (id or unique name) the input is added to as new splits, instead of a new dataset. */
  into?: string | null;
}

/** One progress event; the same objects feed REST's SSE, the GraphQL subscription and the CLI. */
export interface IngestEvent {
  stage: IngestStage;
  current: number;
  total: number | null;
  message: string;
  bytes_read: number;
  bytes_total: number | null;
  dataset_id?: string;
  image_count?: number;
  annotation_count?: number;
  category_count?: number;
  warnings?: Warning[];
  /** On `error` only. */
  code?: string;
}

export interface ValidRequest {
  annotationPath: string;
  imageDir: string | null;
  datasetName: string | null;
  format: string;
  split: string | null;
  storeShapes: boolean | null;
  into: string | null;
}

export function validateRequest(r: IngestRequest): ValidRequest {
  if (!r || typeof r !== 'object') throw new BadInputError('The ingest request must be an object');
  const format = r.format ?? DEFAULT_FORMAT;
  if (typeof format !== 'string' || !FORMAT_CHOICES.includes(format)) {
    throw new BadInputError(`format ${JSON.stringify(format)} is not supported; the supported formats are ${FORMAT_CHOICES.map((f) => `"${f}"`).join(', ')}`);
  }
  if (typeof r.annotationPath !== 'string' || r.annotationPath.trim() === '') throw new BadInputError('annotation_path is required and must be a non-empty string');
  const imageDir = r.imageDir ?? null;
  if (imageDir !== null && (typeof imageDir !== 'string' || imageDir.trim() === '')) throw new BadInputError('image_dir must be a non-empty string');
  const name = r.datasetName ?? null;
  if (name !== null && (typeof name !== 'string' || name.trim() === '' || name.length > 200)) {
    throw new BadInputError('dataset_name must be a non-empty string of at most 200 characters');
  }
  const split = r.split ?? null;
  if (split !== null && (typeof split !== 'string' || split.trim() === '' || split.length > 100)) {
    throw new BadInputError('split must be a non-empty string of at most 100 characters');
  }
  const storeShapes = r.storeShapes ?? null;
  if (storeShapes !== null && typeof storeShapes !== 'boolean') throw new BadInputError('store_shapes must be a boolean');
  const into = r.into ?? null;
  if (into !== null && (typeof into !== 'string' || into.trim() === '')) throw new BadInputError('into must be a non-empty string: the id or unique name of the dataset to add the splits to');
  if (into !== null && name !== null) throw new BadInputError('dataset_name and into exclude each other: an addition keeps the name of the dataset it goes into');
  return { annotationPath: r.annotationPath, imageDir, datasetName: name?.trim() ?? null, format, split: split?.trim() ?? null, storeShapes, into: into?.trim() ?? null };
}
