import type { Settings } from '../config.js';
import { AccessService } from './access.js';
import { AggregationService } from './aggregate/aggregations.js';
import { Database } from './db/connection.js';
import { DatasetService } from './datasets/datasets.js';
import { IngestionService } from './ingest/ingest.js';
import type { Logger } from './logger.js';
import { PluginHost, type PluginHostOptions } from './plugins/plugin-host.js';
import { SampleService } from './datasets/samples.js';
import { EvaluationService } from './evaluation/evaluations.js';
import { ExportService } from './export/export.js';
import { ObjectService } from './objects/objects.js';
import { PredictionService } from './predictions/predictions.js';
import { StorageService, type StorageOptions } from './storage/index.js';
import { TagService } from './curation/tags.js';
import { ViewService } from './curation/views.js';
import { ThumbnailService } from './images/thumbnails.js';

/** Every service of one DataVisor process, wired once; the CLI and the server are adapters over it. */
export interface DataVisor {
  settings: Settings;
  log: Logger;
  db: Database;
  plugins: PluginHost;
  thumbnails: ThumbnailService;
  datasets: DatasetService;
  samples: SampleService;
  ingestion: IngestionService;
  /** Prediction runs: import, list, delete (docs/predictions.md). */
  predictions: PredictionService;
  /** COCO evaluation of prediction runs (docs/evaluation.md). */
  evaluations: EvaluationService;
  /** COCO (and YOLO) exports of a dataset or a filtered view (docs/formats.md, "Export"). */
  exports: ExportService;
  /** Annotations as rows, and their crops (docs/curation.md, "Objects"). */
  objects: ObjectService;
  /** Counts, breakdowns and histograms over filtered samples (docs/curation.md). */
  aggregations: AggregationService;
  /** Tags on samples and annotations (docs/curation.md). */
  tags: TagService;
  /** Saved views: named filters and sorts per dataset (docs/curation.md). */
  views: ViewService;
  /** Local disk, S3 and GCS behind one interface; enforces DATAVISOR_DATA_ROOTS. */
  storage: StorageService;
  /** DATAVISOR_API_TOKEN checks and image URL signatures (docs/security.md). */
  access: AccessService;
  /**
   * Shutdown's first step, so that it ends in bounded time: running ingests are cancelled (they roll
   * back), DuckDB refuses new queries and interrupts running statements, queued thumbnail work is
   * refused. Requests that need none of that (a cached thumbnail, /health) still answer.
   */
  stopWork(): void;
  close(): Promise<void>;
}

export interface OpenOptions {
  plugins?: PluginHostOptions;
  /** Storage knobs beyond the settings (retry policy, list page size), e.g. for tests. */
  storage?: Partial<Omit<StorageOptions, 'dataRoots' | 's3' | 'gcs' | 'presign' | 'log'>>;
}

export async function openDataVisor(settings: Settings, log: Logger, options: OpenOptions = {}): Promise<DataVisor> {
  const db = await Database.open(settings.dbPath, { memoryLimit: settings.dbMemoryLimit, ingestMemoryLimit: settings.dbIngestMemoryLimit, aggregateThreads: settings.aggregateThreads });
  try {
    const storage = new StorageService({
      dataRoots: settings.dataRoots, s3: settings.s3, gcs: settings.gcs, presign: settings.presign, log, ...options.storage,
    });
    const plugins = await PluginHost.load(settings.pluginDir, log, options.plugins);
    const thumbnails = new ThumbnailService({
      cacheDir: settings.cacheDir,
      onWriteError: (err) => log.error({ err }, 'could not write a thumbnail to the cache (it was served from memory)'),
    });
    const datasets = new DatasetService(db, thumbnails);
    // A process killed while an ingest made thumbnails leaves them behind: listed now, before any
    // ingest of this process can make a folder, those of datasets the database lacks are removed.
    thumbnails.sweep(await datasets.ids()).catch((err: unknown) => log.error({ err }, 'could not remove the thumbnails of unknown datasets'));
    const samples = new SampleService(db, datasets, thumbnails, storage);
    const ingestion = new IngestionService({
      db, datasets, log, plugins, thumbnails, storage, thumbnailsOnIngest: settings.thumbnailsOnIngest,
      storeShapes: settings.storeShapes, parseThreads: settings.parseThreads, parseMinPartBytes: settings.parseMinPartBytes,
    });
    const predictions = new PredictionService({ db, datasets, storage, log, parseThreads: settings.parseThreads, parseMinPartBytes: settings.parseMinPartBytes });
    const evaluations = new EvaluationService({ db, datasets, predictions, log });
    const objects = new ObjectService({ db, datasets, samples, predictions, evaluations, thumbnails, storage });
    const aggregations = new AggregationService(db, datasets, samples, predictions);
    const views = new ViewService({ db, datasets });
    const tags = new TagService({ db, datasets, samples, views, predictions });
    const exports = new ExportService({ db, datasets, samples, predictions, storage });
    const access = new AccessService({ token: settings.apiToken, imageUrlTtl: settings.imageUrlTtl });
    let closed = false;
    return {
      settings, log, db, plugins, thumbnails, datasets, samples, ingestion, predictions, evaluations, objects, aggregations, tags, views, exports, storage, access,
      stopWork() {
        ingestion.cancelAll();
        predictions.cancelAll();
        db.stop();
        thumbnails.stop();
      },
      async close() {
        if (closed) return;
        closed = true;
        await plugins.deactivate();
        await thumbnails.flush();
        storage.close();
        await db.close();
      },
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}
