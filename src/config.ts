import path from 'node:path';

/** Settings of ../shared/CONTRACT.md, read once from the environment. */
export interface Settings {
  host: string;
  port: number;
  dbPath: string;
  cacheDir: string;
  pluginDir: string;
  /** Local folders (absolute, unresolved) and bucket prefixes (`s3://b/p`, `gs://b/p`). */
  dataRoots: string[];
  thumbnailsOnIngest: number;
  demo: boolean;
  apiToken: string | undefined;
  /** DuckDB's memory_limit (buffer pool, sorts, uncommitted ingests); beyond it DuckDB spills to disk. */
  dbMemoryLimit: string;
  /** Default of an ingest's `store_shapes`: keep polygons, RLE and keypoints (costs ~40% more ingest time). */
  storeShapes: boolean;
}

function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Settings {
  const roots = (env.DATAVISOR_DATA_ROOTS ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(r) ? r : path.resolve(cwd, r)));
  return {
    host: env.DATAVISOR_HOST || '127.0.0.1',
    port: intSetting(env, 'DATAVISOR_PORT', 8000, 0),
    dbPath: path.resolve(cwd, env.DATAVISOR_DB_PATH || 'data/datavisor.duckdb'),
    cacheDir: path.resolve(cwd, env.DATAVISOR_CACHE_DIR || 'data/thumbnails'),
    pluginDir: path.resolve(cwd, env.DATAVISOR_PLUGIN_DIR || 'plugins'),
    dataRoots: roots.length > 0 ? roots : [cwd],
    thumbnailsOnIngest: intSetting(env, 'DATAVISOR_THUMBNAILS_ON_INGEST', 500, 0),
    demo: (env.DATAVISOR_DEMO ?? '1') !== '0',
    apiToken: env.DATAVISOR_API_TOKEN || undefined,
    dbMemoryLimit: env.DATAVISOR_DB_MEMORY_LIMIT || '256MB',
    storeShapes: (env.DATAVISOR_STORE_SHAPES ?? '0') === '1',
  };
}
