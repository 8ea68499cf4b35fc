import type { Database, Snapshot } from '../db/connection.js';
import { annotationsText, exportCategoryRows, exportCounts, imagesText, licenseRows, resultsText, type ExportQuery, type ExportSelection } from '../db/export.js';
import type { Dataset, DatasetService } from '../datasets/datasets.js';
import type { SampleFilter } from '../datasets/filter.js';
import type { SampleService } from '../datasets/samples.js';
import { BadInputError } from '../errors.js';
import type { PredictionService } from '../predictions/predictions.js';
import type { StorageService } from '../storage/index.js';
import { categoryJson, licenseJson } from './coco-json.js';
import { writeYolo, type YoloExportOptions, type YoloExportSummary } from './yolo.js';

/** `coco`: the ground truth as a COCO dataset; `coco_results`: a prediction run as a COCO results file. */
export const EXPORT_FORMATS = ['coco', 'coco_results'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * Which annotations of the exported samples: `matching` (the default) keeps only those of the
 * filter's categories when it names some (the "dog subset": its images, their dogs, the dog
 * category), `all` every annotation of those samples and every category.
 */
export const ANNOTATION_SCOPES = ['matching', 'all'] as const;
export type AnnotationScope = (typeof ANNOTATION_SCOPES)[number];

export interface ExportRequest {
  datasetId: string;
  /** Default `coco`, or `coco_results` when `predictions` names a run. */
  format?: ExportFormat | null;
  /** The samples exported (the API's one sample filter); default all. */
  filter?: SampleFilter;
  /** A prediction run of the dataset: the export is its COCO results file. */
  predictions?: string | null;
  annotations?: AnnotationScope | null;
}

export interface ExportProgress {
  section: 'images' | 'annotations';
  done: number;
  total: number;
}

/**
 * An export ready to stream: the request was checked (every error is thrown by `prepare`, before a
 * byte is sent) and its counts taken, all from one snapshot of the database, which the streamed
 * rows also come from. Read `chunks()` to its end or stop it (return()), or call `close()`: the
 * snapshot holds a DuckDB connection until then.
 */
export interface PreparedExport {
  dataset: Dataset;
  format: ExportFormat;
  /** A file name for the download: `<dataset name>[-<split>][.<run>].json`, safe in a header. */
  fileName: string;
  counts: { images: number; annotations: number };
  /** What the file cannot hold as the dataset had it (one sentence each), for a header or stderr. */
  warnings: string[];
  /** The file's bytes (UTF-8), ~1 MB a chunk. */
  chunks(onProgress?: (p: ExportProgress) => void): AsyncGenerator<Uint8Array, void, undefined>;
  close(): void;
}

export interface CheckedExport {
  dataset: Dataset;
  run: { name: string; labelSet: number } | null;
  filter: SampleFilter;
  selection: ExportSelection;
}

export interface ExportDeps {
  db: Database;
  datasets: DatasetService;
  samples: SampleService;
  predictions: PredictionService;
  storage: StorageService;
}

/**
 * COCO exports of a dataset or of a filtered view of it (docs/formats.md, "Export"): every row is
 * streamed from DuckDB a chunk at a time and written as text as it comes, so memory holds a chunk,
 * never the dataset. The REST download, GraphQL's URL and `datavisor export` all come here.
 */
export class ExportService {
  constructor(private readonly deps: ExportDeps) {}

  /** Checks a request without reading any row: NOT_FOUND for an unknown dataset or run, BAD_USER_INPUT for the rest. */
  async check(request: ExportRequest): Promise<CheckedExport> {
    const { datasets, samples, predictions } = this.deps;
    const dataset = await datasets.get(request.datasetId);
    const format = request.format ?? (request.predictions != null ? 'coco_results' : 'coco');
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new BadInputError(`format must be one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    if (format === 'coco_results' && request.predictions == null) {
      throw new BadInputError('format coco_results exports a prediction run: name it (predictions=RUN, --predictions RUN)');
    }
    const scope = request.annotations ?? 'matching';
    if (!(ANNOTATION_SCOPES as readonly string[]).includes(scope)) throw new BadInputError(`annotations must be one of ${ANNOTATION_SCOPES.join(', ')}, got ${JSON.stringify(scope)}`);
    const run = request.predictions != null ? await predictions.get(dataset.id, request.predictions) : null;
    const filter = request.filter ?? {};
    const query = await samples.toQuery(dataset.id, filter);
    return {
      dataset,
      run: run && { name: run.name, labelSet: run.labelSet },
      filter,
      selection: { datasetId: dataset.id, filter: query, labelSet: run?.labelSet ?? 0, categoryIds: scope === 'matching' ? query.categoryIds : undefined },
    };
  }

  /** Checks the request (check()) and opens its snapshot. */
  async prepare(request: ExportRequest): Promise<PreparedExport> {
    const { dataset, run, filter, selection } = await this.check(request);
    const snapshot = await this.deps.db.snapshot();
    try {
      const counts = await exportCounts(snapshot, selection);
      const warnings: string[] = [];
      if (run === null && counts.shapesMissing > 0) {
        warnings.push(
          `${counts.shapesMissing} annotation(s) had a polygon, RLE mask or keypoints that the ingest did not store (ingest with --shapes or DATAVISOR_STORE_SHAPES=1 to keep them): ` +
            'they are written with "segmentation": [] and without "keypoints"',
        );
      }
      const render = run === null ? () => this.dataset(snapshot, dataset, selection, counts.shapesStored) : () => this.results(snapshot, selection, counts.shapesStored);
      return {
        dataset,
        format: run === null ? 'coco' : 'coco_results',
        fileName: downloadName(dataset, filter, run?.name ?? null),
        counts: { images: counts.images, annotations: counts.annotations },
        warnings,
        chunks: (onProgress) => closing(snapshot, render()(onProgress ?? (() => undefined), counts)),
        close: () => snapshot.close(),
      };
    } catch (e) {
      snapshot.close();
      throw e;
    }
  }

  /** The ground truth of a dataset or view as an Ultralytics YOLO folder (yolo.ts); refuses a prediction run. */
  async yolo(request: ExportRequest, options: YoloExportOptions): Promise<YoloExportSummary> {
    if (request.predictions != null) throw new BadInputError('a YOLO export writes the ground truth; export a prediction run as a COCO results file (--format coco)');
    const { dataset, selection } = await this.check(request);
    const snapshot = await this.deps.db.snapshot();
    try {
      const { images } = await exportCounts(snapshot, selection);
      return await writeYolo(snapshot, this.deps, dataset, selection, images, options);
    } finally {
      snapshot.close();
    }
  }

  /** A COCO dataset: info and licenses as the ingest kept them, categories, images, annotations. */
  private dataset(db: Snapshot, dataset: Dataset, s: ExportSelection, withShapes: boolean) {
    return async function* (onProgress: (p: ExportProgress) => void, counts: { images: number; annotations: number }) {
      const head = dataset.info ? `{"info":${JSON.stringify(dataset.info)},` : '{';
      const licenses = (await licenseRows(db, s.datasetId)).map(licenseJson);
      const categories = (await exportCategoryRows(db, s.datasetId, s.categoryIds)).map(categoryJson);
      yield bytes(`${head}"licenses":[${licenses.join(',')}],\n"categories":[\n${categories.join(',\n')}\n],\n"images":[\n`);
      yield* section(db, imagesText(s), (done) => onProgress({ section: 'images', done, total: counts.images }));
      yield bytes('\n],\n"annotations":[\n');
      yield* section(db, annotationsText(s, withShapes), (done) => onProgress({ section: 'annotations', done, total: counts.annotations }));
      yield bytes('\n]}\n');
    };
  }

  /** A results file: the run's detections in the order of the file it was imported from. */
  private results(db: Snapshot, s: ExportSelection, withShapes: boolean) {
    return async function* (onProgress: (p: ExportProgress) => void, counts: { images: number; annotations: number }) {
      yield bytes('[\n');
      yield* section(db, resultsText(s, withShapes), (done) => onProgress({ section: 'annotations', done, total: counts.annotations }));
      yield bytes('\n]\n');
    };
  }
}

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');

const SEPARATOR = bytes(',\n');

/**
 * The rows of one section as JSON objects, one a line, in file order: the text DuckDB writes
 * (db/export.ts), a chunk of rows' bytes at a time.
 */
async function* section(db: Snapshot, q: ExportQuery, progress: (done: number) => void) {
  let done = 0;
  for await (const chunk of db.chunks(q.sql, q.params)) {
    yield chunk.joinedText(0, SEPARATOR, done === 0);
    done += chunk.rowCount;
    progress(done);
  }
}

/** Closes the snapshot however the stream ends: read to its end, failed, or stopped by its reader. */
async function* closing(snapshot: Snapshot, chunks: AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    yield* chunks;
  } finally {
    snapshot.close();
  }
}

/** Letters, digits, `.`, `_` and `-` only: the name goes into a Content-Disposition header and a file system. */
function downloadName(dataset: Dataset, filter: SampleFilter, run: string | null): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 80) || 'dataset';
  return `${safe(dataset.name.replace(/\.json$/i, ''))}${filter.split !== undefined ? `-${safe(filter.split)}` : ''}${run !== null ? `.${safe(run)}` : ''}.json`;
}
