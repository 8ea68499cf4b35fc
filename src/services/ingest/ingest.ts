import type { Database } from '../db/connection.js';
import { DatasetWriter } from '../db/dataset-writer.js';
import { countSplitImages, splitConflictMessage } from '../db/dataset-merge.js';
import type { Dataset, DatasetService } from '../datasets/datasets.js';
import { DataVisorError, isDataVisorError } from '../errors.js';
import { newDatasetId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { IngestContext, PluginHost, SampleHookRunner } from '../plugins/plugin-host.js';
import { imageAt, type Columns } from '../records/columns.js';
import type { StorageService } from '../storage/index.js';
import type { ThumbnailService } from '../images/thumbnails.js';
import type { ReadStep, ReadSummary } from './formats/reader.js';
import { probeInput } from './formats/probe.js';
import { readerFor } from './formats/registry.js';
import { placeImages } from './into.js';
import { SECTION_STAGE, validateRequest, type IngestEvent, type IngestRequest, type IngestStage } from './request.js';

export { INGEST_STAGES, type IngestEvent, type IngestRequest, type IngestStage } from './request.js';

export interface IngestionDeps {
  db: Database;
  /** Resolves `into` and orders an addition with the other changes of its dataset. */
  datasets: DatasetService;
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

/** Progress events are throttled; stage changes always go out at once. */
const PROGRESS_INTERVAL_MS = 100;
const THUMBNAIL_WINDOW = 8;

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
   * Streams one dataset, in any format of the registry, into a new dataset: resolve → read →
   * write → thumbnails → commit. Ends with exactly one `complete` or `error` event. With `into`,
   * its splits are added to an existing dataset instead (docs/formats.md, "Several splits in one
   * dataset"): read and checked as a dataset of its own, then merged in the same transaction.
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
    /** Left mid-way (error, abort, the consumer's return()), it must be stopped: it may hold threads and files. */
    let read: AsyncGenerator<ReadStep, ReadSummary> | null = null;
    let committed = false;
    /** The error event was reached: the catch below logged why. */
    let failed = false;
    let bytesRead = 0;
    let bytesTotal: number | null = null;
    /** With `into`: the dataset added to, and the end of this ingest's turn among its changes. */
    let target: Dataset | null = null;
    let endTurn: (() => void) | null = null;
    const { log } = this.deps;
    try {
      const req = validateRequest(request);
      if (req.into !== null) {
        target = await this.deps.datasets.resolve(req.into);
        // Held to the end: a prediction import of the dataset meanwhile would number its rows
        // against what the addition is about to change.
        endTurn = await this.deps.datasets.turn(target.id);
        target = await this.deps.datasets.get(target.id);
        if (req.split !== null) {
          const n = await countSplitImages(this.deps.db, target.id, req.split);
          if (n > 0) throw new DataVisorError('CONFLICT', splitConflictMessage(target.id, `"${req.split}" (${n} images)`));
        }
      }
      const { probe, input } = await probeInput(this.deps.storage, 'annotation_path', req.annotationPath);
      const reader = readerFor(req.format, probe);
      // Each input may be a local path or a bucket URL (s3://, gs://), in any mix.
      const source = await reader.resolve({ annotationPath: req.annotationPath, input, imageDir: req.imageDir, probe }, this.deps.storage);
      const annotationPath = source.annotation.url;
      const imageDir = source.images.url;
      bytesTotal = source.bytesTotal;
      const name = target?.name ?? req.datasetName ?? source.defaultName;
      const placement = target ? await placeImages(this.deps.storage, target.id, target.imageDir, imageDir) : null;
      const context: IngestContext = { datasetId: target?.id ?? datasetId, datasetName: name, annotationPath, imageDir, split: req.split };
      log.info({ dataset_id: datasetId, into: target?.id, format: reader.name, annotation_path: annotationPath, image_dir: imageDir }, 'ingest started');

      writer = await DatasetWriter.begin(this.deps.db, datasetId, req.split, log, { rowsInOrder: source.rowsInOrder === true });
      await this.deps.plugins.ingestStart(context);
      const hooks = this.deps.plugins.hasSampleHooks ? this.deps.plugins.sampleRunner(context) : null;

      let stage: IngestStage | null = null;
      let info: Record<string, unknown> | null = null;
      let lastEmit = 0;
      const counts = { categories: 0, images: 0, annotations: 0 };
      const event = (s: IngestStage, message?: string): IngestEvent => {
        const current = s === 'categories' ? counts.categories : s === 'parsing_annotations' ? counts.annotations : counts.images;
        return { stage: s, current, total: null, message: message ?? progressMessage(s, current), bytes_read: bytesRead, bytes_total: bytesTotal };
      };

      read = reader.read(source, {
        keepShapes: req.storeShapes ?? this.deps.storeShapes, threads: this.deps.parseThreads, minPartBytes: this.deps.parseMinPartBytes,
      });
      let step = await read.next();
      while (!step.done) {
        this.throwIfAborted(controller);
        bytesRead = step.value.bytesRead;
        // A step may name the next section before the last rows of the one before: stage events
        // go out once the whole step is applied, so each stage reports its true count.
        const stages: IngestStage[] = [];
        for (const ev of step.value.events) {
          switch (ev.kind) {
            case 'section':
              stages.push(SECTION_STAGE[ev.name]);
              break;
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
            case 'renumber_categories':
              writer.renumberCategories(ev.from, ev.to);
              break;
            case 'licenses':
              writer.addLicenses(ev.licenses);
              break;
            case 'info':
              info = ev.info;
              break;
          }
        }
        for (const next of stages) {
          if (next === stage) continue;
          if (stage) yield event(stage);
          stage = next;
          lastEmit = performance.now();
          yield event(stage);
        }
        if (stage && performance.now() - lastEmit >= PROGRESS_INTERVAL_MS) {
          lastEmit = performance.now();
          yield event(stage);
        }
        step = await read.next();
      }
      const summary = step.value;
      bytesRead = summary.bytesRead;
      if (stage) yield event(stage);
      yield event(stage ?? 'parsing_images', `Read ${counts.images} images, ${counts.annotations} annotations, ${counts.categories} categories; checking references`);

      this.throwIfAborted(controller);
      await writer.appendFileNames(this.deps.storage.listImages(source.images));
      const final = await writer.finish(summary.warnings);

      // An addition's thumbnails are made on demand: made now they would be keyed on the provisional id.
      const thumbnailTotal = this.deps.thumbnails && !target ? Math.min(this.deps.thumbnailsOnIngest, final.imageCount) : 0;
      if (thumbnailTotal > 0) {
        for await (const e of this.makeThumbnails(writer, imageDir, thumbnailTotal, controller)) {
          yield { ...e, bytes_read: bytesRead, bytes_total: bytesTotal };
        }
      }

      this.throwIfAborted(controller);
      if (target && placement) {
        const outcome = await writer.commitInto(placement, final);
        committed = true;
        const seconds = (performance.now() - started) / 1000;
        log.info({ dataset_id: target.id, splits: outcome.splits, images: final.imageCount, annotations: final.annotationCount, revision: outcome.revision, seconds }, 'splits added');
        await this.deps.plugins.ingestComplete(context, {
          dataset_id: target.id, image_count: final.imageCount, annotation_count: final.annotationCount,
          category_count: final.categoryCount, warnings: outcome.warnings.map((w) => ({ code: w.code, count: w.count })), seconds,
        });
        yield {
          stage: 'complete', current: final.imageCount, total: final.imageCount,
          message: `Added ${final.imageCount} images, ${final.annotationCount} annotations and ${final.categoryCount} categories as split ${outcome.splits.map((s) => JSON.stringify(s)).join(', ')} of dataset "${target.name}" (${target.id}) in ${seconds.toFixed(1)} s` +
            (outcome.warnings.length ? ` (${outcome.warnings.length} kind(s) of warning)` : ''),
          bytes_read: bytesRead, bytes_total: bytesTotal, dataset_id: target.id, image_count: final.imageCount,
          annotation_count: final.annotationCount, category_count: final.categoryCount, warnings: outcome.warnings,
        };
        return;
      }
      const seconds = (performance.now() - started) / 1000;
      await writer.commit(
        {
          id: datasetId, name, format: reader.name, sourcePath: annotationPath, imageDir, split: req.split, info,
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
      failed = true;
      // Cancelled: whatever failed meanwhile (a statement the shutdown interrupted) is the cancel's doing.
      const e = controller.signal.aborted && isDataVisorError(controller.signal.reason) ? controller.signal.reason : toIngestError(err);
      if (e.code === 'INGEST_FAILED') log.error({ err, dataset_id: datasetId }, 'ingest failed unexpectedly');
      else log.warn({ dataset_id: datasetId, code: e.code, reason: e.message }, 'ingest failed');
      await this.stopReader(read, datasetId);
      await this.discard(writer, datasetId);
      writer = null;
      yield { stage: 'error', current: 0, total: null, message: e.message, code: e.code, bytes_read: bytesRead, bytes_total: bytesTotal };
    } finally {
      // Reached on success, on error, and when the consumer stops early (client disconnect).
      if (!committed && !failed) {
        // Stopped at a yield, where no check of the signal runs: logged as a cancel noticed mid-work is.
        const reason = isDataVisorError(controller.signal.reason) ? controller.signal.reason.message : 'Ingestion cancelled: its consumer stopped reading';
        log.warn({ dataset_id: datasetId, code: 'INGEST_CANCELLED', reason }, 'ingest failed');
      }
      await this.stopReader(read, datasetId);
      if (!committed && writer) await this.discard(writer, datasetId);
      endTurn?.();
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

  private async stopReader(read: AsyncGenerator<ReadStep, ReadSummary> | null, datasetId: string): Promise<void> {
    // return() runs the reader's `finally` (threads, files); on a finished reader it does nothing.
    await read?.return(undefined as never).catch((err: unknown) => {
      this.deps.log.error({ err, dataset_id: datasetId }, 'could not stop the reader');
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

function toIngestError(err: unknown): DataVisorError {
  if (isDataVisorError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return new DataVisorError('FILE_NOT_FOUND', `A file disappeared during ingestion: ${e.message}`, { cause: err });
  if (e?.code === 'EACCES') return new DataVisorError('FORBIDDEN', `Permission denied: ${e.message}`, { cause: err });
  return new DataVisorError('INGEST_FAILED', `Ingestion failed: ${e?.message ?? String(err)}`, { cause: err });
}
