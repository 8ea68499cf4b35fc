import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { pino } from 'pino';
import { loadSettings } from '../../dist/config.js';
import { startServer, type RunningServer, type ServerOptions } from '../../dist/server.js';
import { openDataVisor, type DataVisor } from '../../dist/services/app.js';
import { dataRoots, DEMO } from '../helpers/fixtures.js';

/** Tests import the compiled server: ingestion runs its parser in a compiled worker thread. */

// Every fixture and data root comes from one module (committed, generated, or ../shared when present).
export { bigCocoFile, FIXTURES, hasShared, RBC, RBC_TRAIN, REPO } from '../helpers/fixtures.js';
/** The demo dataset every REST test ingests unless it needs another (tests/helpers/fixtures.ts). */
export const DEMO_JSON = DEMO.annotations;
export const DEMO_IMAGES = DEMO.images;

/** Ingests, thumbnails and a 240-image demo take seconds on a 2-core machine. */
export const SLOW = 120_000;

export interface TestServer {
  base: string;
  dv: DataVisor;
  server: RunningServer;
  /** This server's temp folder: database, thumbnail cache, and a data root for fixtures. */
  tmp: string;
  /** A folder inside the data roots where tests build their fixtures. */
  data: string;
  /** Every JSON log line the server wrote. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export interface TestServerOptions {
  thumbnailsOnIngest?: number;
  server?: ServerOptions;
  /** Extra data roots besides the real datasets and `data`. */
  roots?: string[];
  /** More settings (DATAVISOR_* variables). */
  env?: Record<string, string>;
}

/** A real server on 127.0.0.1, port 0, with its own DuckDB file and cache in a new temp folder. */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'datavisor-rest-')));
  const data = path.join(tmp, 'data');
  await fs.mkdir(data);
  const settings = loadSettings(
    {
      DATAVISOR_HOST: '127.0.0.1',
      DATAVISOR_PORT: '0',
      DATAVISOR_DB_PATH: path.join(tmp, 'db', 'test.duckdb'),
      DATAVISOR_CACHE_DIR: path.join(tmp, 'thumbnails'),
      DATAVISOR_PLUGIN_DIR: path.join(tmp, 'no-plugins'),
      DATAVISOR_DATA_ROOTS: dataRoots(data, ...(opts.roots ?? [])),
      DATAVISOR_THUMBNAILS_ON_INGEST: String(opts.thumbnailsOnIngest ?? 0),
      DATAVISOR_DEMO: '0',
      ...opts.env,
    },
    tmp,
  );
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const dv = await openDataVisor(settings, pino({ level: 'info' }, sink));
  const server = await startServer(dv, opts.server);
  return {
    base: server.url,
    dv,
    server,
    tmp,
    data,
    logs,
    async close() {
      await server.close();
      await dv.close();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}

export interface IngestEventJson {
  stage: string;
  current: number;
  total: number | null;
  message: string;
  code?: string;
  dataset_id?: string;
  image_count?: number;
  annotation_count?: number;
  category_count?: number;
  warnings?: { code: string; count: number; message: string }[];
  [k: string]: unknown;
}

/** `data:` payloads of an SSE body, parsed; comments (heartbeats) are dropped. */
export function parseSse(text: string): IngestEventJson[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((block) =>
      block
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n'),
    )
    .filter(Boolean)
    .map((d) => JSON.parse(d) as IngestEventJson);
}

export function postIngest(base: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}/datasets/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  });
}

/** Runs an ingest over SSE to its end and returns every event. */
export async function ingest(base: string, body: unknown): Promise<{ res: Response; events: IngestEventJson[]; text: string }> {
  const res = await postIngest(base, body);
  const text = await res.text();
  return { res, events: res.headers.get('content-type')?.startsWith('text/event-stream') ? parseSse(text) : [], text };
}

/** Ingests and insists on success; returns the `complete` event. */
export async function ingestOk(base: string, body: unknown): Promise<IngestEventJson> {
  const { res, events, text } = await ingest(base, body);
  const last = events.at(-1);
  if (res.status !== 200 || last?.stage !== 'complete') throw new Error(`ingest failed: ${res.status} ${text.slice(-500)}`);
  return last;
}

export async function getJson<T = any>(url: string, init?: RequestInit): Promise<{ status: number; body: T; res: Response }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, res };
}

export async function expectHealthy(base: string): Promise<void> {
  const res = await fetch(`${base}/health`);
  const body = await res.json();
  if (res.status !== 200 || (body as { status?: string }).status !== 'ok') throw new Error(`/health answered ${res.status}`);
}

/** Reads an SSE response block by block, as a browser's EventSource would. */
export async function* sseBlocks(res: Response): AsyncGenerator<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
    }
  }
}

/** A PNG that claims width×height pixels but is only a few hundred KB: a decompression bomb. */
export async function bombPng(width: number, height: number): Promise<Buffer> {
  const deflate = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((r) => deflate.on('end', r));
  const rows = Buffer.alloc((width + 1) * 500);
  for (let y = 0; y < height; y += 500) {
    if (!deflate.write(rows)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await ended;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth 8, grey; compression, filter and interlace 0
  const chunk = (type: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), body])), 0);
    return Buffer.concat([head, body, crc]);
  };
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(out)), chunk('IEND', Buffer.alloc(0))]);
}
