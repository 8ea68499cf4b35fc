import os from 'node:os';
import path from 'node:path';

/** Settings of docs/contract.md, read once from the environment. */
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
  /** DATAVISOR_API_TOKEN: when set, every route but /health needs `Authorization: Bearer <token>` (docs/security.md). */
  apiToken: string | undefined;
  /** DATAVISOR_IMAGE_URL_TTL: seconds a signed image URL stays valid (at least; see services/access.ts). */
  imageUrlTtl: number;
  /** DATAVISOR_CORS_ORIGINS: origins whose pages may call the API (`['*']`: any); empty: no CORS headers. */
  corsOrigins: string[];
  /** DuckDB's memory_limit (buffer pool, sorts, uncommitted ingests); beyond it DuckDB spills to disk. */
  dbMemoryLimit: string;
  /**
   * DATAVISOR_DB_INGEST_MEMORY_LIMIT: DuckDB's memory_limit while ingests only append their rows
   * (none is writing its final tables); null when not below dbMemoryLimit (docs/storage.md, "Memory").
   */
  dbIngestMemoryLimit: string | null;
  /**
   * DATAVISOR_AGGREGATE_THREADS: DuckDB threads an aggregation runs on (other reads run on one;
   * docs/storage.md, "Threads"); null: DuckDB's default, the cores.
   */
  aggregateThreads: number | null;
  /** DATAVISOR_PARSE_THREADS: threads one large annotation file is parsed on (default: cores, at most 4; 1: no split). */
  parseThreads: number;
  /** DATAVISOR_PARSE_MIN_PART_BYTES: the smallest part of a file worth a thread of its own (default 32 MiB). */
  parseMinPartBytes: number;
  /** Default of an ingest's `store_shapes`: keep polygons, RLE and keypoints (costs ~40% more ingest time). */
  storeShapes: boolean;
  /** DATAVISOR_PAGE_CACHE_MB: bytes of GET /samples answers kept for repeated requests (0: none; src/rest/response-cache.ts). */
  pageCacheBytes: number;
  /** DATAVISOR_PRESIGN=1: originals in S3/GCS are answered with a redirect to a presigned URL. */
  presign: boolean;
  /** s3:// access, from the standard AWS variables (the SDK also reads ~/.aws files itself). */
  s3: S3Settings;
  /** gs:// access, from Google's standard variables. */
  gcs: GcsSettings;
}

export interface S3Settings {
  /** AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL: an S3-compatible server; implies path-style addressing. */
  endpoint: string | null;
  /** AWS_REGION / AWS_DEFAULT_REGION; us-east-1 when an endpoint is set without one. */
  region: string | null;
  forcePathStyle: boolean;
  /** AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); null: the SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
}

export interface GcsSettings {
  /** STORAGE_EMULATOR_HOST (a trailing /storage/v1 dropped); the client then sends no credentials. */
  apiEndpoint: string | null;
  /** GOOGLE_APPLICATION_CREDENTIALS; null: Application Default Credentials. */
  keyFilename: string | null;
  projectId: string | null;
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
    // Trimmed: a token pasted with a trailing newline could never match a header, which fetch trims.
    apiToken: env.DATAVISOR_API_TOKEN?.trim() || undefined,
    imageUrlTtl: intSetting(env, 'DATAVISOR_IMAGE_URL_TTL', 3600, 1),
    corsOrigins: corsOrigins(env.DATAVISOR_CORS_ORIGINS ?? ''),
    ...memoryLimits(env.DATAVISOR_DB_MEMORY_LIMIT || '128MB', env.DATAVISOR_DB_INGEST_MEMORY_LIMIT || '64MB'),
    aggregateThreads: env.DATAVISOR_AGGREGATE_THREADS ? intSetting(env, 'DATAVISOR_AGGREGATE_THREADS', 1, 1) : null,
    parseThreads: intSetting(env, 'DATAVISOR_PARSE_THREADS', Math.min(4, os.availableParallelism()), 1),
    parseMinPartBytes: intSetting(env, 'DATAVISOR_PARSE_MIN_PART_BYTES', 32 * 1024 * 1024, 1),
    storeShapes: (env.DATAVISOR_STORE_SHAPES ?? '0') === '1',
    pageCacheBytes: intSetting(env, 'DATAVISOR_PAGE_CACHE_MB', 32, 0) * 1024 * 1024,
    presign: (env.DATAVISOR_PRESIGN ?? '0') === '1',
    s3: s3Settings(env),
    gcs: gcsSettings(env),
  };
}

/** The units DuckDB reads in a memory size: KB..TB (and K..T, kilobytes..) count in 1000s, KiB..TiB in 1024s. */
const MEMORY_UNITS: Record<string, number> = {
  b: 1, byte: 1, bytes: 1,
  k: 1e3, kb: 1e3, kilobyte: 1e3, kilobytes: 1e3,
  m: 1e6, mb: 1e6, megabyte: 1e6, megabytes: 1e6,
  g: 1e9, gb: 1e9, gigabyte: 1e9, gigabytes: 1e9,
  t: 1e12, tb: 1e12, terabyte: 1e12, terabytes: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Bytes of a DuckDB memory size ("128MB", "4G", "1.5 GiB"); Infinity for "-1" or "none" (no limit). */
export function memoryBytes(name: string, text: string): number {
  if (/^\s*(-1|none)\s*$/i.test(text)) return Infinity;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  const unit = m ? MEMORY_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`${name} must be a size such as 128MB, 4G or 1GiB (or none), got ${JSON.stringify(text)}`);
  return Number(m[1]) * unit;
}

function memoryLimits(full: string, ingest: string): { dbMemoryLimit: string; dbIngestMemoryLimit: string | null } {
  const below = memoryBytes('DATAVISOR_DB_INGEST_MEMORY_LIMIT', ingest) < memoryBytes('DATAVISOR_DB_MEMORY_LIMIT', full);
  return { dbMemoryLimit: full, dbIngestMemoryLimit: below ? ingest : null };
}

/**
 * `*`, or origins as browsers send them in `Origin` (scheme, host, port), normalised as browsers
 * write them (lower-case host, no default port, no trailing slash). Anything with a path, or that
 * is not http(s), is refused at start: an entry that can never match would fail silently in the
 * browser.
 */
function corsOrigins(raw: string): string[] {
  const entries = raw.split(',').map((o) => o.trim()).filter(Boolean);
  if (entries.includes('*')) {
    if (entries.length > 1) throw new Error(`DATAVISOR_CORS_ORIGINS: "*" allows every origin and cannot be combined with others, got ${JSON.stringify(raw)}`);
    return ['*'];
  }
  return entries.map((entry) => {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      // Reported below with the entry.
    }
    const bare = url && url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
    if (!url || !bare || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Error(`DATAVISOR_CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin such as https://app.example.com or http://localhost:5173`);
    }
    return url.origin;
  });
}

function s3Settings(env: NodeJS.ProcessEnv): S3Settings {
  // The SDK's own switch for ignoring configured endpoints.
  const ignoreEndpoint = (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '').toLowerCase() === 'true';
  const endpoint = ignoreEndpoint ? null : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || null;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : null);
  const credentials = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
    ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
    : null;
  return { endpoint, region, forcePathStyle: endpoint !== null, credentials };
}

function gcsSettings(env: NodeJS.ProcessEnv): GcsSettings {
  const host = env.STORAGE_EMULATOR_HOST?.trim();
  return {
    apiEndpoint: host ? host.replace(/\/+$/, '').replace(/\/storage\/v1$/, '') : null,
    keyFilename: env.GOOGLE_APPLICATION_CREDENTIALS || null,
    projectId: env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || null,
  };
}
