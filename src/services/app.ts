import type { Settings } from '../config.js';
import { Database } from './db/connection.js';
import { DatasetService } from './datasets.js';
import { IngestionService } from './ingest.js';
import type { Logger } from './logger.js';
import { PluginHost, type PluginHostOptions } from './plugins.js';
import { SampleService } from './samples.js';
import { ThumbnailService } from './thumbnails.js';

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
  close(): Promise<void>;
}

export interface OpenOptions {
  plugins?: PluginHostOptions;
}

export async function openDataVisor(settings: Settings, log: Logger, options: OpenOptions = {}): Promise<DataVisor> {
  const db = await Database.open(settings.dbPath, { memoryLimit: settings.dbMemoryLimit });
  try {
    const plugins = await PluginHost.load(settings.pluginDir, log, options.plugins);
    const thumbnails = new ThumbnailService({ cacheDir: settings.cacheDir });
    const datasets = new DatasetService(db, thumbnails);
    const samples = new SampleService(db, datasets, thumbnails);
    const ingestion = new IngestionService({
      db, log, plugins, thumbnails, dataRoots: settings.dataRoots, thumbnailsOnIngest: settings.thumbnailsOnIngest,
      storeShapes: settings.storeShapes,
    });
    let closed = false;
    return {
      settings, log, db, plugins, thumbnails, datasets, samples, ingestion,
      async close() {
        if (closed) return;
        closed = true;
        await plugins.deactivate();
        db.close();
      },
    };
  } catch (e) {
    db.close();
    throw e;
  }
}
