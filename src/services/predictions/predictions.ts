import type { Database } from '../db/connection.js';
import { deletePredictionRun, listPredictionRuns, listPredictionRunsOf, refuseUsedName, RunWriter, splitsOf, type PredictionRunRow } from '../db/predictions.js';
import type { DatasetService } from '../datasets/datasets.js';
import { BadInputError, DataVisorError, isDataVisorError, NotFoundError } from '../errors.js';
import type { IngestPhase } from '../db/ingest-resources.js';
import type { IngestEvent } from '../ingest/request.js';
import type { Logger } from '../logger.js';
import type { Warning } from '../records/types.js';
import type { StorageService } from '../storage/index.js';
import { SampleMatcher } from './match-samples.js';
import { parseResults } from './parse-results.js';
import { listPredictionFiles, readYoloPredictions } from './yolo-results.js';

export type PredictionRun = PredictionRunRow;

export interface ImportRequest {
  datasetId: string;
  /** A COCO results file (local path or bucket URL) inside the data roots. */
  resultsPath: string;
  name: string;
  /** Replace a run of the same name instead of refusing (CONFLICT). */
  replace?: boolean | null;
  /** `coco` (a results file), `yolo` (a folder of txt files), or `auto` (the default: a folder is YOLO). */
  format?: string | null;
  /** The split the predictions were made for: image ids and file stems are those of its samples. */
  split?: string | null;
}

export const PREDICTION_FORMATS = ['auto', 'coco', 'yolo'] as const;

/** Progress and outcome of an import: the ingest's event shape, with `prediction_count` on complete. */
export type ImportEvent = IngestEvent & { prediction_count?: number; name?: string };

const PROGRESS_INTERVAL_MS = 100;
/** Bytes forwarded to a parse thread per message; it tokenizes in 16 KiB slices. */
const READ_CHUNK = 256 * 1024;
const NAME_MAX = 100;

export interface PredictionDeps {
  db: Database;
  datasets: DatasetService;
  storage: StorageService;
  log: Logger;
  /** Threads a large results file is parsed on, and the smallest part worth one (the ingest's settings). */
  parseThreads: number;
  parseMinPartBytes: number;
}

/**
 * Prediction runs: model outputs stored beside a dataset's ground truth, each a label set with a
 * name. An import streams its file, matched to the dataset's samples and categories as it is
 * read, into one change of the dataset (all or nothing; the dataset's revision moves on when it
 * commits): the change holds the dataset's turn from the first detection to the last.
 */
export class PredictionService {
  private readonly running = new Set<AbortController>();

  constructor(private readonly deps: PredictionDeps) {}

  async list(datasetId: string): Promise<PredictionRun[]> {
    await this.deps.datasets.get(datasetId);
    return listPredictionRuns(this.deps.db, datasetId);
  }

  /** For DataLoader: the runs of many datasets, in key order. */
  async listMany(datasetIds: readonly string[]): Promise<PredictionRun[][]> {
    return listPredictionRunsOf(this.deps.db, datasetIds);
  }

  async get(datasetId: string, name: string): Promise<PredictionRun> {
    const run = (await this.list(datasetId)).find((r) => r.name === name);
    if (!run) throw new NotFoundError(`prediction run of dataset ${datasetId}`, name);
    return run;
  }

  /** Removes every row of the run; NOT_FOUND for an unknown dataset or run. */
  async delete(datasetId: string, name: string): Promise<void> {
    const { result } = await this.deps.datasets.change(datasetId, (tx) => deletePredictionRun(tx, datasetId, name));
    if (!result) throw new NotFoundError(`prediction run of dataset ${datasetId}`, name);
  }

  /** Cancels every running import (server shutdown); each rolls back and ends with an error event. */
  cancelAll(reason = 'the server is shutting down'): void {
    for (const c of this.running) c.abort(new DataVisorError('INGEST_CANCELLED', `Import cancelled: ${reason}`));
  }

  /**
   * Streams a COCO results file into a new prediction run. Ends with exactly one `complete` or
   * `error` event; an error, an abort or the consumer stopping early leaves nothing behind.
   */
  async *import(request: ImportRequest, options: { signal?: AbortSignal } = {}): AsyncGenerator<ImportEvent, void> {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (options.signal?.aborted) onOuterAbort();
    this.running.add(controller);
    const { log, storage, datasets } = this.deps;
    const started = performance.now();
    let bytesRead = 0;
    let bytesTotal: number | null = null;
    let count = 0;
    const progress = (message: string): ImportEvent => ({
      stage: 'parsing_predictions', current: count, total: null, message, bytes_read: bytesRead, bytes_total: bytesTotal,
    });
    let change: Awaited<ReturnType<DatasetService['openChange']>> | null = null;
    // DuckDB's threads and memory follow the import as they follow an ingest (ingest-resources.ts):
    // its final statements sort and write millions of rows, which one thread did at half speed.
    let phase: IngestPhase | null = null;
    const enter = async (to: IngestPhase | null) => {
      const from = phase;
      phase = to;
      await this.deps.db.ingestResources.move(from, to);
    };
    try {
      const req = validateImport(request);
      await datasets.get(req.datasetId);
      const input = await storage.resolveInput('results_path', req.resultsPath, 'any');
      const format = req.format === 'auto' ? (input.isDirectory ? 'yolo' : 'coco') : req.format;
      if (format === 'yolo' && !input.isDirectory) {
        throw new BadInputError(`results_path ${input.url} is a file; format "yolo" reads a folder of .txt files (one per image: class cx cy w h conf)`);
      }
      if (format === 'coco' && input.isDirectory) {
        throw new BadInputError(`results_path ${input.url} is a folder; format "coco" reads a results file (a JSON array), format "yolo" a folder of .txt files`);
      }
      const files = format === 'yolo' ? await listPredictionFiles(input) : null;
      // A used name or an unknown split is refused here, before any progress: nothing has been read yet.
      await refuseUsedName(this.deps.db, req.datasetId, req.name, req.replace);
      if (req.split !== null) {
        const splits = await splitsOf(this.deps.db, req.datasetId);
        if (!splits.includes(req.split)) throw new BadInputError(`dataset ${req.datasetId} has no split "${req.split}"; its splits are ${splits.map((s) => `"${s}"`).join(', ') || 'none'}`);
      }
      bytesTotal = input.size;
      log.info({ dataset_id: req.datasetId, name: req.name, results_path: input.url, format }, 'prediction import started');
      await enter('appending');
      change = await datasets.openChange(req.datasetId);
      const writer = await RunWriter.begin(change.tx, req.datasetId, req.name, { replace: req.replace, sourcePath: input.url });
      yield progress('Reading predictions');
      let lastEmit = performance.now();
      let nonFiniteBoxes = { count: 0, examples: [] as number[] };
      if (files) {
        const read = readYoloPredictions(input, files);
        for (let step = await read.next(); !step.done; step = await read.next()) {
          throwIfAborted(controller);
          await writer.appendYolo(step.value.rows);
          count += step.value.rows.count;
          bytesRead = step.value.bytesRead;
          if (performance.now() - lastEmit >= PROGRESS_INTERVAL_MS) {
            lastEmit = performance.now();
            yield progress(`Read ${count} predictions`);
          }
        }
        yield progress(`Read ${count} predictions; matching their files to images`);
        await enter('finishing');
        await writer.resolveYolo(req.split);
      } else {
        // Read while the dataset's turn is held: the samples matched against cannot change meanwhile.
        const matcher = await SampleMatcher.load(this.deps.db, req.datasetId, req.split);
        const read = parseResults(
          {
            size: input.size,
            localPath: input.store.kind === 'local' ? input.key : undefined,
            open: (range, spare) => storage.openInput(input, READ_CHUNK, range, spare),
          },
          { threads: this.deps.parseThreads, minPartBytes: this.deps.parseMinPartBytes },
        );
        try {
          let step = await read.next();
          while (!step.done) {
            throwIfAborted(controller);
            if (step.value.resumed) {
              log.info({ dataset_id: req.datasetId, from: matcher.count }, 'the rest of the results file is read in one part: its split for parallel parsing did not hold');
            }
            for (const batch of step.value.batches) {
              const samples = matcher.match(batch);
              if (samples) await writer.append(batch, samples);
            }
            count = matcher.count;
            bytesRead = step.value.bytesRead;
            if (performance.now() - lastEmit >= PROGRESS_INTERVAL_MS) {
              lastEmit = performance.now();
              yield progress(`Read ${count} predictions`);
            }
            step = await read.next();
          }
          bytesRead = step.value.bytesRead;
          count = step.value.count;
          nonFiniteBoxes = step.value.nonFiniteBoxes;
        } finally {
          // Terminates the parse threads and closes the file when the read is left early.
          await read.return(undefined as never);
        }
        matcher.refuseUnknown();
        yield progress(`Read ${count} predictions; writing them`);
        await enter('finishing');
      }
      throwIfAborted(controller);
      const stored = await writer.finish();
      await change.commit();
      change = null;
      const warnings: Warning[] = [];
      if (nonFiniteBoxes.count > 0) {
        warnings.push({
          code: 'non_finite_bbox', count: nonFiniteBoxes.count,
          message: 'predictions have a bbox holding NaN or Infinity: kept without a box, left out of box evaluation and statistics',
          examples: nonFiniteBoxes.examples,
        });
      }
      const seconds = (performance.now() - started) / 1000;
      log.info({ dataset_id: req.datasetId, name: req.name, predictions: stored, seconds }, 'prediction import complete');
      yield {
        stage: 'complete', current: stored, total: stored,
        message: `Imported ${stored} predictions as run "${req.name}" in ${seconds.toFixed(1)} s`,
        bytes_read: bytesRead, bytes_total: bytesTotal, dataset_id: req.datasetId, name: req.name, prediction_count: stored, warnings,
      };
    } catch (err) {
      const e = toImportError(err);
      if (e.code === 'INTERNAL') log.error({ err }, 'prediction import failed unexpectedly');
      else log.warn({ dataset_id: request?.datasetId, code: e.code, reason: e.message }, 'prediction import failed');
      await change?.rollback();
      change = null;
      yield { stage: 'error', current: 0, total: null, message: e.message, code: e.code, bytes_read: bytesRead, bytes_total: bytesTotal };
    } finally {
      // Also when the consumer stops early (client disconnect): nothing of the run stays.
      await change?.rollback();
      await enter(null);
      options.signal?.removeEventListener('abort', onOuterAbort);
      this.running.delete(controller);
    }
  }
}

interface ValidImport {
  datasetId: string;
  resultsPath: string;
  name: string;
  replace: boolean;
  format: (typeof PREDICTION_FORMATS)[number];
  split: string | null;
}

function validateImport(r: ImportRequest): ValidImport {
  if (!r || typeof r !== 'object') throw new BadInputError('The import request must be an object');
  if (typeof r.resultsPath !== 'string' || r.resultsPath.trim() === '') throw new BadInputError('results_path is required and must be a non-empty string');
  if (typeof r.name !== 'string' || r.name.trim() === '' || r.name.length > NAME_MAX) {
    throw new BadInputError(`name (of the prediction run) is required: a non-empty string of at most ${NAME_MAX} characters`);
  }
  if (r.replace != null && typeof r.replace !== 'boolean') throw new BadInputError('replace must be a boolean');
  const format = r.format ?? 'auto';
  if (!(PREDICTION_FORMATS as readonly unknown[]).includes(format)) {
    throw new BadInputError(`format ${JSON.stringify(format)} is not a predictions format; give one of ${PREDICTION_FORMATS.map((f) => `"${f}"`).join(', ')}`);
  }
  const split = r.split ?? null;
  if (split !== null && (typeof split !== 'string' || split.trim() === '')) throw new BadInputError('split must be a non-empty string: the split the predictions were made for');
  return {
    datasetId: r.datasetId, resultsPath: r.resultsPath, name: r.name.trim(), replace: r.replace ?? false,
    format: format as ValidImport['format'], split: split?.trim() ?? null,
  };
}

function throwIfAborted(c: AbortController): void {
  if (c.signal.aborted) throw isDataVisorError(c.signal.reason) ? c.signal.reason : new DataVisorError('INGEST_CANCELLED', 'Import cancelled');
}

function toImportError(err: unknown): DataVisorError {
  if (isDataVisorError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return new DataVisorError('FILE_NOT_FOUND', `A file disappeared during the import: ${e.message}`, { cause: err });
  return new DataVisorError('INTERNAL', `Import failed: ${e?.message ?? String(err)}`, { cause: err });
}
