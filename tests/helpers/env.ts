import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor, type DataVisor, type OpenOptions } from '../../dist/services/app.js';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import type { ImportEvent, ImportRequest } from '../../dist/services/predictions/predictions.js';
import { createLogger, type Logger } from '../../dist/services/logger.js';
import { dataRoots } from './fixtures.js';

// Every fixture and data root comes from one module (committed, generated, or ../shared when present).
export { COCO128, dataRoots, DEMO, hasShared, RBC, RBC_TRAIN, readJson } from './fixtures.js';

export function tempDir(prefix = 'dv-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestEnv {
  dir: string;
  dv: DataVisor;
  close(): Promise<void>;
}

/**
 * A DataVisor on a fresh DuckDB file in a temp folder. Data roots: the fixtures (dataRoots()) and the temp folder.
 * `env` overrides any DATAVISOR_* setting (e.g. DATAVISOR_PLUGIN_DIR); `log` replaces the silent logger.
 */
export async function openTestEnv(env: Record<string, string> = {}, options: OpenOptions = {}, log?: Logger): Promise<TestEnv> {
  const dir = tempDir();
  const emptyPlugins = path.join(dir, 'no-plugins');
  fs.mkdirSync(emptyPlugins);
  const settings = loadSettings(
    {
      DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'),
      DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'),
      DATAVISOR_PLUGIN_DIR: emptyPlugins,
      DATAVISOR_DATA_ROOTS: dataRoots(dir),
      DATAVISOR_THUMBNAILS_ON_INGEST: '0',
      ...env,
    },
    dir,
  );
  const dv = await openDataVisor(settings, log ?? createLogger('silent'), options);
  return {
    dir,
    dv,
    async close() {
      await dv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs an ingest to its end and returns every event. */
export async function ingestAll(dv: DataVisor, request: IngestRequest): Promise<IngestEvent[]> {
  const events: IngestEvent[] = [];
  for await (const e of dv.ingestion.ingest(request)) events.push(e);
  return events;
}

/** Every event of a prediction run's import, to its end. */
export async function importAll(dv: DataVisor, request: ImportRequest): Promise<ImportEvent[]> {
  const events: ImportEvent[] = [];
  for await (const e of dv.predictions.import(request)) events.push(e);
  return events;
}

/** Writes `coco` as `name` in the env's folder and ingests it whole (its images, if any, in that folder); answers the dataset id. */
export async function ingestJson(env: TestEnv, name: string, coco: unknown, request: Partial<IngestRequest> = {}): Promise<string> {
  const annotationPath = path.join(env.dir, name);
  fs.writeFileSync(annotationPath, JSON.stringify(coco));
  return (await ingestAll(env.dv, { annotationPath, imageDir: env.dir, ...request })).at(-1)!.dataset_id!;
}

/** Rows left in every table for a dataset id, plus leftover staging tables: all zero after a failed ingest. */
export async function traces(dv: DataVisor): Promise<Record<string, number>> {
  const q = async (sql: string) => Number((await dv.db.query(sql))[0]!.n);
  return {
    datasets: await q('SELECT count(*) AS n FROM datasets'),
    samples: await q('SELECT count(*) AS n FROM samples'),
    annotations: await q('SELECT count(*) AS n FROM annotations'),
    categories: await q('SELECT count(*) AS n FROM categories'),
    licenses: await q('SELECT count(*) AS n FROM licenses'),
    staging: await q(`SELECT count(*) AS n FROM duckdb_tables() WHERE table_name LIKE 'staging_%'`),
  };
}

/** A logger whose JSON lines land in `lines` (parsed), for tests that read what the service logged. */
export function capturingLogger(level = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}
