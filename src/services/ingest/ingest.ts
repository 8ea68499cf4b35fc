import { randomBytes } from 'node:crypto';
import { parseCoco, type ParseInput } from './formats/coco/parse-coco.js';
import { imageAt, type Columns } from '../records/columns.js';
import type { CocoSection } from '../records/types.js';
import type { Database } from '../db/connection.js';
import { DatasetWriter, type Warning } from '../db/dataset-writer.js';
import { BadInputError, DataVisorError, isDataVisorError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { IngestContext, PluginHost, SampleHookRunner } from '../plugins/plugin-host.js';
import { baseName } from '../storage/location.js';
import type { StorageService } from '../storage/index.js';
import type { ThumbnailService } from '../images/thumbnails.js';

export type IngestStage = 'categories' | 'parsing_images' | 'parsing_annotations' | 'thumbnails' | 'complete' | 'error';

export const INGEST_STAGES: readonly IngestStage[] = ['categories', 'parsing_images', 'parsing_annotations', 'thumbnails', 'complete', 'error'];

export interface IngestRequest {
  annotationPath: string;
  imageDir: string;
  datasetName?: string | null;
  format?: string | null;
  split?: string | null;
  /** Keep polygons, RLE masks and keypoints for drawing (default: the DATAVISOR_STORE_SHAPES setting). */
  storeShapes?: boolean | null;
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

export interface IngestionDeps {
  db: Database;
  log: Logger;
  plugins: PluginHost;
  thumbnails: ThumbnailService | null;
  /** Resolves annotation_path and image_dir (local or bucket) and enforces DATAVISOR_DATA_ROOTS. */
  storage: StorageService;
  thumbnailsOnIngest: number;
  storeShapes: boolean;
  /** Threads a large annotation file is parsed on, and the smallest part worth one (docs/ingestion.md). */
  parseThreads: number;
  parseMinPartBytes: number;
}

const SECTION_STAGE: Partial<Record<CocoSection, IngestStage>> = {
  images: 'parsing_images',
  annotations: 'parsing_annotations',
  categories: 'categories',
};
/** Progress events are throttled; stage changes always go out at once. */
const PROGRESS_INTERVAL_MS = 100;
/** Forwarded to the parse thread per message (bucket streams are regrouped to it); it tokenizes in 16 KiB slices. */
const READ_CHUNK = 256 * 1024;
const THUMBNAIL_WINDOW = 8;

export function newDatasetId(): string {
  // 16 lowercase base32 characters: URL- and folder-safe, 80 random bits.
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return Array.from(randomBytes(16), (b) => alphabet[b & 31]).join('');
}

export class IngestionService {
  private readonly running = new Set<AbortController>();

  constructor(private readonly deps: IngestionDeps) {}

  /** Ingests running now. */
  get active(): number {
    return this.running.size;
  }

  /** Cancels every running ingest (server shutdown); each rolls back and ends with an error event. */
  cancelAll(reason = 'the server is shutting down'): void {
    for (const c of this.running) c.abort(new DataVisorError('INGEST_CANCELLED', `Ingestion cancelled: ${reason}`));
  }

  /**
   * Streams one COCO file into a new dataset. Ends with exactly one `complete` or `error` event.
   * All or nothing: an error, an abort, or the consumer stopping early (`return()`, e.g. a client
   * disconnect) rolls the transaction back and removes any thumbnails it made.
   */
  async *ingest(request: IngestRequest, options: { signal?: AbortSignal } = {}): AsyncGenerator<IngestEvent, void> {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (options.signal?.aborted) onOuterAbort();
    this.running.add(controller);
    const started = performance.now();
    const datasetId = newDatasetId();
    let writer: DatasetWriter | null = null;
    /** Left mid-file (error, abort, the consumer's return()), it must be stopped: it holds a worker thread and the file. */
    let parse: ReturnType<typeof parseCoco> | null = null;
    let committed = false;
    let bytesRead = 0;
    let bytesTotal: number | null = null;
    const { log } = this.deps;
    try {
      const req = validateRequest(request);
      // Each may be a local path or a bucket URL (s3://, gs://), in any mix.
      const annotation = await this.deps.storage.resolveInput('annotation_path', req.annotationPath, 'file');
      const images = await this.deps.storage.resolveInput('image_dir', req.imageDir, 'directory');
      const annotationPath = annotation.url;
      const imageDir = images.url;
      bytesTotal = annotation.size;
      const name = req.datasetName ?? baseName(annotation.location).replace(/\.json$/i, '');
      const context: IngestContext = { datasetId, datasetName: name, annotationPath, imageDir, split: req.split };
      log.info({ dataset_id: datasetId, annotation_path: annotationPath, image_dir: imageDir }, 'ingest started');

      writer = await DatasetWriter.begin(this.deps.db, datasetId, req.split, log);
      await this.deps.plugins.ingestStart(context);
      const hooks = this.deps.plugins.hasSampleHooks ? this.deps.plugins.sampleRunner(context) : null;

      let stage: IngestStage | null = null;
      let info: Record<string, unknown> | null = null;
      let lastEmit = 0;
      const counts = { categories: 0, images: 0, annotations: 0 };
      const event = (message?: string): IngestEvent => {
        const s = stage ?? 'parsing_images';
        const current = s === 'categories' ? counts.categories : s === 'parsing_annotations' ? counts.annotations : counts.images;
        return { stage: s, current, total: null, message: message ?? progressMessage(s, current), bytes_read: bytesRead, bytes_total: bytesTotal };
      };

      const keepShapes = req.storeShapes ?? this.deps.storeShapes;
      // Parsed as it is read or downloaded, never held whole.
      const input: ParseInput = { size: annotation.size, open: (range, spare) => this.deps.storage.openInput(annotation, READ_CHUNK, range, spare) };
      parse = parseCoco(input, { keepShapes, threads: this.deps.parseThreads, minPartBytes: this.deps.parseMinPartBytes });
      let step = await parse.next();
      while (!step.done) {
        this.throwIfAborted(controller);
        bytesRead = step.value.bytesRead;
        for (const ev of step.value.events) {
          switch (ev.kind) {
            case 'section': {
              const next = SECTION_STAGE[ev.name];
              if (next && next !== stage) {
                if (stage) yield event();
                stage = next;
                lastEmit = performance.now();
                yield event();
              }
              break;
            }
            case 'images':
              await this.appendImages(writer, ev.columns, hooks, req.split);
              counts.images += ev.columns.count;
              break;
            case 'annotations':
              writer.appendAnnotations(ev.columns, ev.part);
              counts.annotations += ev.columns.count;
              break;
            case 'parts_dropped':
              log.info({ dataset_id: datasetId }, 'the annotation file is read in one part: its split for parallel parsing did not hold');
              await writer.dropParts();
              counts.annotations = writer.counts.annotations;
              break;
            case 'categories':
              writer.addCategories(ev.categories);
              counts.categories += ev.categories.length;
              break;
            case 'licenses':
              writer.addLicenses(ev.licenses);
              break;
            case 'info':
              info = ev.info;
              break;
          }
        }
        if (stage && performance.now() - lastEmit >= PROGRESS_INTERVAL_MS) {
          lastEmit = performance.now();
          yield event();
        }
        step = await parse.next();
      }
      const summary = step.value;
      bytesRead = summary.bytesRead;
      yield event(`Read ${counts.images} images, ${counts.annotations} annotations, ${counts.categories} categories; checking references`);

      this.throwIfAborted(controller);
      await writer.appendFileNames(this.deps.storage.listImages(images));
      const final = await writer.finish(summary.nonStandardNumbers);

      const thumbnailTotal = this.deps.thumbnails ? Math.min(this.deps.thumbnailsOnIngest, final.imageCount) : 0;
      if (thumbnailTotal > 0) {
        for await (const e of this.makeThumbnails(writer, imageDir, thumbnailTotal, controller)) {
          yield { ...e, bytes_read: bytesRead, bytes_total: bytesTotal };
        }
      }

      this.throwIfAborted(controller);
      const seconds = (performance.now() - started) / 1000;
      await writer.commit(
        {
          id: datasetId, name, format: 'coco', sourcePath: annotationPath, imageDir, split: req.split, info,
          pluginStats: hooks && Object.keys(hooks.stats).length > 0 ? hooks.stats : null, bytes: bytesRead, ingestSeconds: seconds,
        },
        final,
      );
      committed = true;
      log.info(
        { dataset_id: datasetId, images: final.imageCount, annotations: final.annotationCount, parse_parts: summary.parts, seconds },
        'ingest complete',
      );
      await this.deps.plugins.ingestComplete(context, {
        dataset_id: datasetId, image_count: final.imageCount, annotation_count: final.annotationCount,
        category_count: final.categoryCount, warnings: final.warnings.map((w) => ({ code: w.code, count: w.count })), seconds,
      });
      yield {
        stage: 'complete', current: final.imageCount, total: final.imageCount,
        message: `Ingested ${final.imageCount} images, ${final.annotationCount} annotations and ${final.categoryCount} categories in ${seconds.toFixed(1)} s` +
          (final.warnings.length ? ` (${final.warnings.length} kind(s) of warning)` : ''),
        bytes_read: bytesRead, bytes_total: bytesTotal, dataset_id: datasetId, image_count: final.imageCount,
        annotation_count: final.annotationCount, category_count: final.categoryCount, warnings: final.warnings,
      };
    } catch (err) {
      const e = toIngestError(err);
      if (e.code === 'INGEST_FAILED') log.error({ err, dataset_id: datasetId }, 'ingest failed unexpectedly');
      else log.warn({ dataset_id: datasetId, code: e.code, reason: e.message }, 'ingest failed');
      await this.stopParser(parse, datasetId);
      await this.discard(writer, datasetId);
      writer = null;
      yield { stage: 'error', current: 0, total: null, message: e.message, code: e.code, bytes_read: bytesRead, bytes_total: bytesTotal };
    } finally {
      // Reached on success, on error, and when the consumer stops early (client disconnect).
      await this.stopParser(parse, datasetId);
      if (!committed && writer) await this.discard(writer, datasetId);
      options.signal?.removeEventListener('abort', onOuterAbort);
      this.running.delete(controller);
    }
  }

  private async appendImages(writer: DatasetWriter, images: Columns, hooks: SampleHookRunner | null, split: string | null) {
    if (!hooks) {
      writer.appendSamples(images);
      return;
    }
    const metadata: (string | null)[] = [];
    for (let i = 0; i < images.count; i++) {
      const img = imageAt(images, i);
      const added = await hooks.run({
        image_id: img.id, file_name: img.fileName, width: img.width, height: img.height, split, metadata: { ...(img.extra ?? {}) },
      });
      const merged = added ? { ...(img.extra ?? {}), ...added } : img.extra;
      metadata.push(merged ? JSON.stringify(merged) : null);
    }
    writer.appendSamples(images, metadata);
  }

  private async *makeThumbnails(writer: DatasetWriter, imageDir: string, total: number, controller: AbortController) {
    const thumbnails = this.deps.thumbnails!;
    const samples = await writer.firstPresentSamples(total);
    let done = 0;
    let failed = 0;
    let lastEmit = performance.now();
    const ev = () => ({
      stage: 'thumbnails' as const, current: done, total: samples.length,
      message: `Made ${done} of ${samples.length} thumbnails${failed ? ` (${failed} images could not be decoded)` : ''}`,
    });
    yield ev();
    for (let i = 0; i < samples.length; i += THUMBNAIL_WINDOW) {
      this.throwIfAborted(controller);
      const window = samples.slice(i, i + THUMBNAIL_WINDOW);
      const results = await Promise.all(
        window.map((s) =>
          thumbnails.warm({
            datasetId: writer.datasetId, sampleKey: String(s.image_id), size: 'medium',
            loadSource: () => this.deps.storage.imageSource(imageDir, s.file_name),
          }),
        ),
      );
      done += window.length;
      failed += results.filter((ok) => !ok).length;
      if (performance.now() - lastEmit >= PROGRESS_INTERVAL_MS || done === samples.length) {
        lastEmit = performance.now();
        yield ev();
      }
    }
  }

  private async stopParser(parse: ReturnType<typeof parseCoco> | null, datasetId: string): Promise<void> {
    // return() runs parseCoco's `finally` (terminate the worker, close the file); on a finished parser it does nothing.
    await parse?.return(undefined as never).catch((err: unknown) => {
      this.deps.log.error({ err, dataset_id: datasetId }, 'could not stop the COCO parser');
    });
  }

  private async discard(writer: DatasetWriter | null, datasetId: string): Promise<void> {
    try {
      await writer?.rollback();
    } catch (err) {
      this.deps.log.error({ err, dataset_id: datasetId }, 'rollback failed');
    }
    await this.deps.thumbnails?.removeDataset(datasetId).catch((err: unknown) => {
      this.deps.log.error({ err, dataset_id: datasetId }, 'could not remove the thumbnails of a failed ingest');
    });
  }

  private throwIfAborted(c: AbortController): void {
    if (c.signal.aborted) {
      throw isDataVisorError(c.signal.reason) ? c.signal.reason : new DataVisorError('INGEST_CANCELLED', 'Ingestion cancelled');
    }
  }
}

function progressMessage(stage: IngestStage, current: number): string {
  switch (stage) {
    case 'categories':
      return `Read ${current} categories`;
    case 'parsing_annotations':
      return `Read ${current} annotations`;
    default:
      return `Read ${current} images`;
  }
}

interface ValidRequest {
  annotationPath: string;
  imageDir: string;
  datasetName: string | null;
  split: string | null;
  storeShapes: boolean | null;
}

function validateRequest(r: IngestRequest): ValidRequest {
  if (!r || typeof r !== 'object') throw new BadInputError('The ingest request must be an object');
  const format = r.format ?? 'coco';
  if (format !== 'coco') throw new BadInputError(`format ${JSON.stringify(format)} is not supported; the supported format is "coco"`);
  for (const [k, v] of [['annotation_path', r.annotationPath], ['image_dir', r.imageDir]] as const) {
    if (typeof v !== 'string' || v.trim() === '') throw new BadInputError(`${k} is required and must be a non-empty string`);
  }
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
  return { annotationPath: r.annotationPath, imageDir: r.imageDir, datasetName: name?.trim() ?? null, split: split?.trim() ?? null, storeShapes };
}

function toIngestError(err: unknown): DataVisorError {
  if (isDataVisorError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return new DataVisorError('FILE_NOT_FOUND', `A file disappeared during ingestion: ${e.message}`, { cause: err });
  if (e?.code === 'EACCES') return new DataVisorError('FORBIDDEN', `Permission denied: ${e.message}`, { cause: err });
  return new DataVisorError('INGEST_FAILED', `Ingestion failed: ${e?.message ?? String(err)}`, { cause: err });
}
