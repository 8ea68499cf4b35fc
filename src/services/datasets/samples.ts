import { ByteLru } from '../common/byte-lru.js';
import { jsonColumn as json, trimWindow, type Database, type Row } from '../db/connection.js';
import { annotationRowsOfSamples, shapeRows, type AnnotationSelection } from '../db/annotations.js';
import { getEvaluationRow } from '../db/evaluations.js';
import { listPredictionRuns } from '../db/predictions.js';
import { listSortedSampleRows, type SampleOrder, type SortedWindow, type SortKeyValue } from '../db/sample-sort.js';
import { countSampleRows, fileNamesAround, getSampleRow, getSampleRows, hasFilter, listSampleRows, type SampleQueryFilter, type SampleWindow } from '../db/samples.js';
import type { Dataset, DatasetService } from './datasets.js';
import type { SampleFilter } from './filter.js';
import { checkPageSize } from './paging.js';
import type { SampleSort } from './sort.js';
import type { Readable } from 'node:stream';
import mime from 'mime-types';
import { BadInputError, DataVisorError, NotFoundError } from '../errors.js';
import { isDatasetId } from '../ids.js';
import { isBucketUrl, type StorageService } from '../storage/index.js';
import type { Thumbnail, ThumbnailService, ThumbnailSize } from '../images/thumbnails.js';

export type { SampleFilter, SampleWindow, SortedWindow, SortKeyValue };

export interface Sample {
  datasetId: string;
  /** The image id of the COCO file, kept as it is. */
  id: number;
  /** Position in the file: the stable order. */
  ord: number;
  fileName: string;
  width: number | null;
  height: number | null;
  split: string | null;
  licenseId: number | null;
  cocoUrl: string | null;
  flickrUrl: string | null;
  dateCaptured: string | null;
  metadata: Record<string, unknown> | null;
  annotationCount: number;
  fileMissing: boolean;
}

export interface Annotation {
  datasetId: string;
  /** The annotation id of the COCO file (not unique when the file repeats ids). */
  id: number;
  /** Position in the file: unique within the dataset. */
  ord: number;
  sampleId: number;
  sampleOrd: number;
  categoryId: number;
  categoryName: string | null;
  bbox: { x: number; y: number; w: number; h: number } | null;
  area: number | null;
  isCrowd: boolean;
  segmentationKind: string;
  polygonCount: number;
  pointCount: number;
  /** Polygons or RLE as in the file; filled only when asked for (`shapes: true`). */
  segmentation: unknown;
  numKeypoints: number | null;
  /** Filled only when asked for (`shapes: true`). */
  keypoints: number[] | null;
  score: number | null;
  source: string;
  extra: Record<string, unknown> | null;
  /** 0: the ground truth; else the prediction run's label set. */
  labelSet: number;
}

/** A sample's original image, located and stat'ed; the bytes are read only by open(). */
export interface OriginalImage {
  sample: Sample;
  /** From the file's name (the real path's, locally); else the type stored on the object; else octet-stream. */
  contentType: string;
  size: number;
  /** Strong and quoted: the object's ETag in a bucket, mtime-size for a local file. */
  etag: string;
  lastModified: Date | null;
  /** Local datasets: the real path of the file. null in a bucket. */
  path: string | null;
  /**
   * When DATAVISOR_PRESIGN=1 and the image is in S3/GCS: a short-lived URL to redirect to
   * (302) instead of streaming the bytes through. null otherwise.
   */
  presignedUrl: string | null;
  /** The bytes, or those of an inclusive range, streamed (never buffered whole); opening is retried on transient errors. */
  open(range?: { start: number; end: number }): Promise<Readable>;
}

export interface SamplePage {
  samples: Sample[];
  /** Whether more samples lie beyond the window in its direction. */
  hasMore: boolean;
}

export interface SortedSamplePage extends SamplePage {
  /** Each sample's sort key (what its cursor carries), in the order of `samples`. */
  keys: SortKeyValue[];
}

function toSample(r: Row, datasetId: string): Sample {
  return {
    datasetId,
    id: r.image_id as number,
    ord: r.ord as number,
    fileName: r.file_name as string,
    width: (r.width as number | null) ?? null,
    height: (r.height as number | null) ?? null,
    split: (r.split as string | null) ?? null,
    licenseId: (r.license_id as number | null) ?? null,
    cocoUrl: (r.coco_url as string | null) ?? null,
    flickrUrl: (r.flickr_url as string | null) ?? null,
    dateCaptured: (r.date_captured as string | null) ?? null,
    metadata: json(r.metadata),
    annotationCount: r.annotation_count as number,
    fileMissing: r.file_missing as boolean,
  };
}

function toAnnotation(r: Row, datasetId: string, categoryNames: ReadonlyMap<number, string>): Annotation {
  const hasBox = r.bbox_x !== null;
  return {
    datasetId,
    id: r.annotation_id as number,
    ord: r.ord as number,
    sampleId: r.image_id as number,
    sampleOrd: r.sample_ord as number,
    categoryId: r.category_id as number,
    categoryName: categoryNames.get(r.category_id as number) ?? null,
    bbox: hasBox ? { x: r.bbox_x as number, y: r.bbox_y as number, w: r.bbox_w as number, h: r.bbox_h as number } : null,
    area: (r.area as number | null) ?? null,
    isCrowd: r.is_crowd as boolean,
    segmentationKind: r.segmentation_kind as string,
    polygonCount: r.polygon_count as number,
    pointCount: r.point_count as number,
    segmentation: null,
    numKeypoints: (r.num_keypoints as number | null) ?? null,
    keypoints: null,
    score: (r.score as number | null) ?? null,
    source: r.source as string,
    extra: json(r.extra),
    labelSet: (r.label_set as number | null) ?? 0,
  };
}

function checkWindow(window: { kind: string; limit: number; offset?: number }): void {
  checkPageSize('limit', window.limit);
  if (window.kind === 'offset' && (!Number.isInteger(window.offset) || window.offset! < 0)) {
    throw new BadInputError(`offset must be a non-negative integer, got ${window.offset}`);
  }
}

/** An image id as it arrives in a URL; anything that is not an integer names no sample. */
export function parseSampleId(raw: string | number): number | null {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : null;
  if (!/^-?\d{1,16}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Samples on each side of a thumbnail miss whose file names are fetched with it (in file order;
 * ~100 bytes each in memory). During a burst of cold thumbnails every query stalls the requests
 * waiting for it: with 100 the lookups cost the cold-thumbnail bench ~4% of its throughput, with
 * 1,000 about half of that (measured before concurrent misses shared one query).
 */
const FILE_NAME_RADIUS = 1000;

export class SampleService {
  /** image → file name, for thumbnail misses (~100 bytes an entry). */
  private readonly fileNames = new ByteLru<string>(8 * 1024 * 1024, (name) => name.length * 2 + 64);
  /** The file-name query running for a dataset, which misses arriving meanwhile wait for. */
  private readonly fileNameQueries = new Map<string, Promise<Row[]>>();

  constructor(
    private readonly db: Database,
    private readonly datasets: DatasetService,
    private readonly thumbnails: ThumbnailService | null,
    private readonly storage: StorageService,
  ) {}

  /** A window of samples in file order; 404 for an unknown dataset. */
  async page(datasetId: string, filter: SampleFilter, window: SampleWindow): Promise<SamplePage> {
    checkWindow(window);
    const rows = await listSampleRows(this.db, datasetId, await this.toQuery(datasetId, filter), window);
    const { hasMore } = trimWindow(rows, window.limit, window.kind);
    return { samples: rows.map((r) => toSample(r, datasetId)), hasMore };
  }

  /**
   * A window of samples in the order of `sort` (ties in file order; docs/curation.md). Keyset
   * windows start after or before a (key, ord) position, as a sorted cursor carries it.
   */
  async sortedPage(datasetId: string, filter: SampleFilter, sort: SampleSort, window: SortedWindow): Promise<SortedSamplePage> {
    checkWindow(window);
    const [query, order] = await Promise.all([this.toQuery(datasetId, filter), this.toOrder(datasetId, sort)]);
    const rows = await listSortedSampleRows(this.db, datasetId, query, order, window);
    const { hasMore } = trimWindow(rows, window.limit, window.kind);
    return { samples: rows.map((r) => toSample(r, datasetId)), keys: rows.map((r) => r.sort_key as SortKeyValue), hasMore };
  }

  /** How many samples match; the unfiltered count comes from the dataset row. */
  async count(datasetId: string, filter: SampleFilter): Promise<number> {
    if (!hasFilter(filter)) return (await this.datasets.get(datasetId)).imageCount;
    const query = await this.toQuery(datasetId, filter);
    // One category and nothing else: the count was computed at ingest.
    const { categoryIds, ...rest } = query;
    if (categoryIds?.length === 1 && !hasFilter(rest)) {
      return (await this.datasets.categories(datasetId)).find((c) => c.categoryId === categoryIds[0])?.imageCount ?? 0;
    }
    return countSampleRows(this.db, datasetId, query);
  }

  /**
   * The filter as the SQL takes it: category names → the dataset's category ids (a name no
   * category has matches nothing), a run's name → its label set (NOT_FOUND if unknown), a saved
   * view's filter (`also`) likewise. NOT_FOUND for an evaluation that is not the dataset's. Public
   * for the object view, aggregations and exports, which apply the same conditions.
   */
  async toQuery(datasetId: string, filter: SampleFilter): Promise<SampleQueryFilter> {
    const { categories, evaluationCategories, predictions, also, ...rest } = filter;
    // An evaluation of another dataset (or none) would match nothing: say it does not exist.
    if (rest.evaluationId !== undefined) await this.evaluationOf(datasetId, rest.evaluationId);
    const query: SampleQueryFilter = { ...rest };
    if (also) query.also = await this.toQuery(datasetId, also);
    if (predictions !== undefined) query.labelSet = await this.labelSetOf(datasetId, predictions);
    if (categories !== undefined || evaluationCategories !== undefined) {
      const all = await this.datasets.categories(datasetId);
      const ids = (names: readonly string[]) => all.filter((c) => names.includes(c.name)).map((c) => c.categoryId);
      if (categories !== undefined) query.categoryIds = ids(categories);
      if (evaluationCategories !== undefined) query.evaluationCategoryIds = ids(evaluationCategories);
    }
    return query;
  }

  /** A sort's names → what the SQL keys on; an unknown category is a BAD_USER_INPUT, an unknown run or evaluation NOT_FOUND. */
  private async toOrder(datasetId: string, sort: SampleSort): Promise<SampleOrder> {
    const descending = sort.direction === 'desc';
    switch (sort.field) {
      case 'category_count': {
        const category = (await this.datasets.categories(datasetId)).find((c) => c.name === sort.category);
        if (!category) throw new BadInputError(`sort.category: dataset ${datasetId} has no category named ${JSON.stringify(sort.category)}`);
        return { key: { kind: 'category_count', categoryId: category.categoryId }, descending };
      }
      case 'prediction_score_max':
      case 'prediction_score_min':
        return { key: { kind: 'score', labelSet: await this.labelSetOf(datasetId, sort.predictions!), aggregate: sort.field === 'prediction_score_max' ? 'max' : 'min' }, descending };
      case 'tp':
      case 'fp':
      case 'fn':
        await this.evaluationOf(datasetId, sort.evaluationId!);
        return { key: { kind: 'outcome', evaluationId: sort.evaluationId!, outcome: sort.field }, descending };
      case 'random':
        return { key: { kind: 'random', seed: sort.seed! }, descending };
      default:
        return { key: { kind: 'column', column: sort.field }, descending };
    }
  }

  private async labelSetOf(datasetId: string, run: string): Promise<number> {
    const found = (await listPredictionRuns(this.db, datasetId)).find((r) => r.name === run);
    if (!found) throw new NotFoundError(`prediction run of dataset ${datasetId}`, run);
    return found.labelSet;
  }

  private async evaluationOf(datasetId: string, evaluationId: string): Promise<void> {
    if (!(await getEvaluationRow(this.db, datasetId, evaluationId))) throw new NotFoundError(`evaluation of dataset ${datasetId}`, evaluationId);
  }

  async get(datasetId: string, sampleId: string | number): Promise<Sample> {
    const id = parseSampleId(sampleId);
    const row = id === null ? undefined : await getSampleRow(this.db, datasetId, id);
    if (!row) throw new NotFoundError(`sample of dataset ${datasetId}`, sampleId);
    return toSample(row, datasetId);
  }

  /** For DataLoader: samples of one dataset by image id, in key order, an Error per unknown id. */
  async getMany(datasetId: string, ids: readonly number[]): Promise<(Sample | Error)[]> {
    const byId = new Map((await getSampleRows(this.db, datasetId, ids)).map((r) => [r.image_id as number, toSample(r, datasetId)]));
    return ids.map((id) => byId.get(id) ?? new NotFoundError(`sample of dataset ${datasetId}`, id));
  }

  /**
   * Annotations of many samples of one dataset in one query, grouped per sample in key order.
   * `shapes` adds polygons/RLE/keypoints (one more query): meant for drawing a few samples, not pages.
   */
  async annotationsOf(datasetId: string, sampleOrds: readonly number[], options: { shapes?: boolean } & AnnotationSelection = {}): Promise<Annotation[][]> {
    const [found, categories] = await Promise.all([
      annotationRowsOfSamples(this.db, datasetId, sampleOrds, { labelSets: options.labelSets, minScore: options.minScore }),
      this.datasets.categories(datasetId),
    ]);
    const names = new Map(categories.map((c) => [c.categoryId, c.name]));
    // File order within each sample.
    const rows = found.map((r) => toAnnotation(r, datasetId, names)).sort((a, b) => a.ord - b.ord);
    if (options.shapes && rows.length > 0) {
      const shapes = new Map((await shapeRows(this.db, datasetId, rows.map((a) => a.ord))).map((r) => [r.ord as number, r]));
      for (const a of rows) {
        const s = shapes.get(a.ord);
        a.segmentation = json(s?.segmentation);
        a.keypoints = json<number[]>(s?.keypoints);
      }
    }
    const byOrd = new Map<number, Annotation[]>();
    for (const a of rows) {
      let list = byOrd.get(a.sampleOrd);
      if (!list) byOrd.set(a.sampleOrd, (list = []));
      list.push(a);
    }
    return sampleOrds.map((o) => byOrd.get(o) ?? []);
  }

  /**
   * The original image file of a dataset on local disk, checked to lie inside the dataset's folder.
   * Datasets in buckets have no file: use openOriginal(), which serves both.
   */
  async imageFile(datasetId: string, sampleId: string | number): Promise<{ sample: Sample; path: string }> {
    const dataset = await this.datasets.get(datasetId);
    const sample = await this.get(datasetId, sampleId);
    if (isBucketUrl(dataset.imageDir)) {
      throw new DataVisorError('INTERNAL', `dataset ${datasetId} keeps its images in a bucket: imageFile() serves local files only, use openOriginal()`);
    }
    return { sample, path: (await this.storage.imageObject(dataset.imageDir, sample.fileName)).path! };
  }

  /**
   * The original of a sample, from local disk or a bucket: type, size, ETag, and a way to read it.
   * NOT_FOUND for an unknown dataset or sample, FILE_NOT_FOUND when its file or object is gone,
   * FORBIDDEN for a `file_name` that leads outside the dataset's folder.
   */
  async openOriginal(datasetId: string, sampleId: string | number): Promise<OriginalImage> {
    const dataset = await this.datasets.get(datasetId);
    const sample = await this.get(datasetId, sampleId);
    const { store, key, info, path } = await this.storage.imageObject(dataset.imageDir, sample.fileName);
    const stored = info.contentType && !/^(application|binary)\/octet-stream$/i.test(info.contentType) ? info.contentType : null;
    return {
      sample,
      contentType: mime.lookup(path ?? sample.fileName) || stored || 'application/octet-stream',
      size: info.size,
      etag: info.etag ?? `"${info.size.toString(16)}"`,
      lastModified: info.lastModified,
      path,
      presignedUrl: store.kind === 'local' ? null : await this.storage.presign(store, key),
      open: (range) => store.openRead(key, range),
    };
  }

  /**
   * A cached thumbnail is served without touching the database: the cache is keyed by dataset
   * and image id, deleting a dataset clears it, and the dataset is known in memory after its first
   * lookup. Only a miss looks the sample up.
   */
  async thumbnail(datasetId: string, sampleId: string | number, size: ThumbnailSize): Promise<Thumbnail> {
    const id = parseSampleId(sampleId);
    if (!this.thumbnails || id === null || !isDatasetId(datasetId)) throw new NotFoundError(`sample of dataset ${datasetId}`, sampleId);
    // Nothing is served for a dataset that does not exist: its cache folder can outlive it (a
    // process killed while an ingest made thumbnails). Once looked up, a dataset is known in memory.
    if (!this.datasets.isKnown(datasetId)) await this.datasets.get(datasetId);
    return this.thumbnails.get({
      datasetId,
      sampleKey: String(id),
      size,
      loadSource: async () => {
        const dataset = await this.datasets.get(datasetId);
        // A local path (sharp reads the file) or, from a bucket, the bytes.
        return this.storage.imageSource(dataset.imageDir, await this.fileNameOf(dataset, id));
      },
    });
  }

  /**
   * The file name of a sample, for a thumbnail miss. Misses come in pages (a grid asks for its
   * neighbours' thumbnails at once), so one query fetches the names of the samples around it and
   * keeps them in a bounded LRU: a page of 50 cold thumbnails costs one query, not 50. Entries of
   * a deleted dataset are harmless (its lookup fails first, ids are never reused) and age out.
   */
  private async fileNameOf(dataset: Dataset, imageId: number): Promise<string> {
    const datasetId = dataset.id;
    // Keyed by the dataset's state as every cache of its content is; entries of an earlier one age out.
    const prefix = `${datasetId}@${dataset.revision}/`;
    const key = prefix + imageId;
    let hit = this.fileNames.get(key);
    if (hit !== undefined) return hit;
    // A page's misses arrive together: the names one of them is fetching likely hold the others'.
    const running = this.fileNameQueries.get(datasetId);
    if (running) {
      await running.catch(() => undefined);
      hit = this.fileNames.get(key);
      if (hit !== undefined) return hit;
    }
    const query = fileNamesAround(this.db, datasetId, imageId, FILE_NAME_RADIUS);
    this.fileNameQueries.set(datasetId, query);
    let rows: Row[];
    try {
      rows = await query;
    } finally {
      if (this.fileNameQueries.get(datasetId) === query) this.fileNameQueries.delete(datasetId);
    }
    let found: string | undefined;
    for (const r of rows) {
      const name = r.file_name as string;
      if (r.image_id === imageId) found = name;
      this.fileNames.set(prefix + (r.image_id as number), name);
    }
    if (found === undefined) throw new NotFoundError(`sample of dataset ${datasetId}`, imageId);
    return found;
  }
}
