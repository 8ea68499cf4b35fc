import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { DataVisor } from '../../dist/services/app.js';
import { dataRoots, DEMO } from '../helpers/fixtures.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');

/**
 * Loads a module of dist/ with Node's own loader (require of an ES module), as production runs
 * it. Through vitest's transform, dist/ would import `graphql` as its ES build while yoga, Pothos
 * and graphql-tools (loaded by Node) get the CommonJS build: two GraphQLError classes and two
 * schema realms. Every test of tests/graphql takes dist/ modules from here only.
 */
const nodeRequire = createRequire(import.meta.url);
export const dist = <T = any>(module: string): T => nodeRequire(path.join(DIST, module)) as T;

const { loadSettings } = dist<typeof import('../../dist/config.js')>('config.js');
const { openDataVisor } = dist<typeof import('../../dist/services/app.js')>('services/app.js');
const { createLogger } = dist<typeof import('../../dist/services/logger.js')>('services/logger.js');
const { startServer } = dist<typeof import('../../dist/server.js')>('server.js');

/** The demo dataset (tests/helpers/fixtures.ts): what `ingest()` ingests by default, and the oracle of `readCoco()`. */
export const DEMO_JSON = DEMO.annotations;
export const DEMO_IMAGES = DEMO.images;

export interface GraphQLResult<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string; [k: string]: unknown } }[];
}

export interface Harness {
  dv: DataVisor;
  /** http://127.0.0.1:<port> */
  base: string;
  /** A temp folder inside the data roots. */
  tmp: string;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResult<T>>;
  ingest(annotationPath?: string, imageDir?: string, extra?: { datasetName?: string; split?: string }): Promise<string>;
  close(): Promise<void>;
}

/**
 * A DataVisor on a new DuckDB file in a temp folder, served by the real HTTP server (REST and
 * GraphQL, src/server.ts) on 127.0.0.1 and a free port.
 */
export async function startHarness(options: { env?: Record<string, string>; log?: Logger; beforeHandler?: () => void } = {}): Promise<Harness> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'datavisor-graphql-'));
  await fs.mkdir(path.join(tmp, 'plugins'));
  const settings = loadSettings(
    {
      DATAVISOR_HOST: '127.0.0.1',
      DATAVISOR_PORT: '0',
      DATAVISOR_DB_PATH: path.join(tmp, 'db.duckdb'),
      DATAVISOR_CACHE_DIR: path.join(tmp, 'thumbnails'),
      DATAVISOR_DATA_ROOTS: dataRoots(tmp),
      DATAVISOR_PLUGIN_DIR: path.join(tmp, 'plugins'),
      DATAVISOR_THUMBNAILS_ON_INGEST: '3',
      ...options.env,
    },
    tmp,
  );
  const dv = await openDataVisor(settings, (options.log ?? createLogger('silent')) as DataVisor['log']);
  options.beforeHandler?.();
  const server = await startServer(dv, { closeGraceMs: 1_000 });
  const base = server.url;

  return {
    dv,
    base,
    tmp,
    async gql(query, variables = {}) {
      const res = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, ...((await res.json()) as object) };
    },
    async ingest(annotationPath = DEMO_JSON, imageDir = DEMO_IMAGES, extra = {}) {
      for await (const e of dv.ingestion.ingest({ annotationPath, imageDir, ...extra })) {
        if (e.stage === 'complete') return e.dataset_id!;
        if (e.stage === 'error') throw new Error(`ingest failed: ${e.code} ${e.message}`);
      }
      throw new Error('ingest ended without complete');
    },
    async close() {
      dv.ingestion.cancelAll();
      await server.close();
      await dv.close();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}

/** The codes of a result's errors, in order. */
export const codes = (r: GraphQLResult) => (r.errors ?? []).map((e) => e.extensions?.code);

interface CocoFile {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { image_id: number; category_id: number; iscrowd: number; bbox: number[] }[];
  categories: { id: number; name: string }[];
}

/** The annotation file read as plain JSON: the oracle the answers are checked against. */
export async function readCoco(file = DEMO_JSON): Promise<CocoFile> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as CocoFile;
}
