import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * A small server speaking the Cloud Storage JSON API wire protocol, for the calls DataVisor's
 * gs:// store makes through @google-cloud/storage, serving `<root>/<bucket>/<object name>` from a
 * local folder. Written from Google's reference (cloud.google.com/storage/docs/json_api/v1):
 *
 * - `GET /storage/v1/b/{bucket}/o/{object}`: the object resource (objects.get): `size`, `md5Hash`
 *   and `crc32c` as strings/base64, `generation`, `etag`, `updated`, `contentType`…
 * - `GET …/o/{object}?alt=media`: the bytes, with `x-goog-hash: crc32c=…,md5=…`,
 *   `x-goog-generation`, `x-goog-stored-content-encoding` and `-length`; `Range: bytes=a-b`,
 *   `a-` and `-n` answer 206 with `Content-Range`, an unsatisfiable range 416.
 * - `GET /storage/v1/b/{bucket}/o?prefix=&delimiter=&maxResults=&pageToken=&startOffset=&endOffset=`
 *   (objects.list): `{kind: "storage#objects", items, prefixes, nextPageToken}` in lexicographic
 *   order, at most maxResults (≤ 1000) per page. `fields` (partial response) is not applied: the
 *   whole resource is a valid superset.
 * - Errors: the JSON API's body `{"error": {"code", "message", "errors": [{"message", "domain",
 *   "reason"}]}}` (404 notFound for a missing object or bucket, 400 invalid, 416).
 *
 * The client joins its base URL and the path; with `STORAGE_EMULATOR_HOST` it uses the host as the
 * base URL verbatim, without `/storage/v1`, so paths are also accepted without that prefix (as
 * emulators do), and with `/download/storage/v1` (the API's media download URL).
 */

export interface GcsTestServer {
  url: string;
  port: number;
  /** Method, path and query of every request received, in order. */
  seen: { method: string; url: string }[];
  close(): Promise<void>;
}

const PATH_PREFIXES = ['/download/storage/v1', '/storage/v1'];
const MAX_RESULTS = 1000;

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.json': 'application/json',
};

export async function startGcsServer(root: string): Promise<GcsTestServer> {
  const seen: { method: string; url: string }[] = [];
  const hashes = new Map<string, { md5: string; crc32c: string }>();
  let base = '';

  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? 'GET', url: req.url ?? '/' });
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'backendError', `Internal error: ${(e as Error).message}`);
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://gcs.test');
    let p = u.pathname;
    for (const prefix of PATH_PREFIXES) {
      if (p.startsWith(`${prefix}/`)) {
        p = p.slice(prefix.length);
        break;
      }
    }
    const m = /^\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(p);
    if (!m) return sendError(res, 404, 'notFound', `Not Found: ${u.pathname}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, 'methodNotAllowed', `Method ${req.method} is not served by this test server`);
    }
    const bucket = decodeURIComponent(m[1]!);
    const bucketDir = path.join(root, bucket);
    if (bucket.includes('..') || !(await isDir(bucketDir))) {
      return sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
    }
    if (m[2] === undefined) return list(res, bucket, bucketDir, u.searchParams);
    const name = decodeURIComponent(m[2]);
    const file = objectFile(bucketDir, name);
    const st = file && (await fs.promises.stat(file).catch(() => null));
    if (!file || !st?.isFile()) return sendError(res, 404, 'notFound', `No such object: ${bucket}/${name}`);
    if (u.searchParams.get('alt') === 'media') return media(req, res, file, st, bucket, name);
    sendJson(res, 200, await resource(bucket, name, file, st));
  }

  /** Names with `..`, empty or absolute segments are not objects of this server (never outside root). */
  function objectFile(bucketDir: string, name: string): string | null {
    if (name === '' || name.includes('\0') || name.split('/').some((s) => s === '' || s === '.' || s === '..')) return null;
    return path.join(bucketDir, ...name.split('/'));
  }

  async function resource(bucket: string, name: string, file: string, st: fs.Stats) {
    const { md5, crc32c } = await hashesOf(file, st);
    const generation = String(Math.floor(st.mtimeMs * 1000));
    const enc = encodeURIComponent(name);
    const time = st.mtime.toISOString();
    return {
      kind: 'storage#object',
      id: `${bucket}/${name}/${generation}`,
      selfLink: `${base}/storage/v1/b/${bucket}/o/${enc}`,
      mediaLink: `${base}/download/storage/v1/b/${bucket}/o/${enc}?generation=${generation}&alt=media`,
      name,
      bucket,
      generation,
      metageneration: '1',
      contentType: contentType(name),
      storageClass: 'STANDARD',
      size: String(st.size),
      md5Hash: md5,
      crc32c,
      etag: etagOf(generation),
      timeCreated: time,
      updated: time,
      timeStorageClassUpdated: time,
    };
  }

  async function media(req: http.IncomingMessage, res: http.ServerResponse, file: string, st: fs.Stats, bucket: string, name: string) {
    const { md5, crc32c } = await hashesOf(file, st);
    const generation = String(Math.floor(st.mtimeMs * 1000));
    const headers: Record<string, string> = {
      'content-type': contentType(name),
      'x-goog-generation': generation,
      'x-goog-metageneration': '1',
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(st.size),
      // Hashes are of the whole object, also on a range (clients skip validation for ranges).
      'x-goog-hash': `crc32c=${crc32c},md5=${md5}`,
      'x-goog-storage-class': 'STANDARD',
      etag: etagOf(generation),
      'last-modified': st.mtime.toUTCString(),
      'accept-ranges': 'bytes',
      'cache-control': 'no-cache, no-store, max-age=0, must-revalidate',
    };
    const range = parseRange(req.headers.range, st.size);
    if (range === 'unsatisfiable') {
      return sendError(res, 416, 'requestedRangeNotSatisfiable', `Request range not satisfiable for ${bucket}/${name}`);
    }
    const [start, end] = range ?? [0, st.size - 1];
    headers['content-length'] = String(Math.max(0, end - start + 1));
    if (range) headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || st.size === 0) return void res.end();
    fs.createReadStream(file, { start, end }).pipe(res);
  }

  async function list(res: http.ServerResponse, bucket: string, bucketDir: string, q: URLSearchParams) {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const maxResults = q.has('maxResults') ? Number(q.get('maxResults')) : MAX_RESULTS;
    if (!Number.isInteger(maxResults) || maxResults < 1) return sendError(res, 400, 'invalid', `Invalid value for maxResults: ${q.get('maxResults')}`);
    const pageSize = Math.min(maxResults, MAX_RESULTS);
    let after: string | null = null;
    const token = q.get('pageToken');
    if (token) {
      after = Buffer.from(token, 'base64url').toString('utf8');
      if (!after.startsWith('v1:')) return sendError(res, 400, 'invalid', 'Invalid pageToken');
      after = after.slice(3);
    }
    const startOffset = q.get('startOffset');
    const endOffset = q.get('endOffset');
    const names = (await walk(bucketDir)).filter(
      (n) => n.startsWith(prefix) && (after === null || n > after) && (!startOffset || n >= startOffset) && (!endOffset || n < endOffset),
    );
    const items: unknown[] = [];
    const prefixes = new Set<string>();
    let last: string | null = null;
    let i = 0;
    for (; i < names.length && items.length + prefixes.size < pageSize; i++) {
      const n = names[i]!;
      const cut = delimiter ? n.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) {
        const sub = n.slice(0, cut + delimiter.length);
        prefixes.add(sub);
        // Skip the rest of this "folder": it is one entry.
        while (i + 1 < names.length && names[i + 1]!.startsWith(sub)) i++;
        last = names[i]!;
        continue;
      }
      const file = path.join(bucketDir, ...n.split('/'));
      items.push(await resource(bucket, n, file, await fs.promises.stat(file)));
      last = n;
    }
    const body: Record<string, unknown> = { kind: 'storage#objects' };
    if (i < names.length && last !== null) body.nextPageToken = Buffer.from(`v1:${last}`).toString('base64url');
    if (prefixes.size) body.prefixes = [...prefixes];
    if (items.length) body.items = items;
    sendJson(res, 200, body);
  }

  async function hashesOf(file: string, st: fs.Stats) {
    const id = `${file}\0${st.mtimeMs}\0${st.size}`;
    let h = hashes.get(id);
    if (!h) {
      const bytes = await fs.promises.readFile(file);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32c(bytes));
      h = { md5: createHash('md5').update(bytes).digest('base64'), crc32c: crc.toString('base64') };
      hashes.set(id, h);
    }
    return h;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    url: base,
    port,
    seen,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: http.ServerResponse, status: number, reason: string, message: string): void {
  sendJson(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } });
}

/** An opaque entity tag per object version, as GCS's are (theirs encode generation and metageneration). */
function etagOf(generation: string): string {
  return Buffer.from(`${generation}/1`).toString('base64');
}

function contentType(name: string): string {
  return CONTENT_TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}

async function isDir(p: string): Promise<boolean> {
  return (await fs.promises.stat(p).catch(() => null))?.isDirectory() ?? false;
}

/** Every file under `dir` as an object name (`/`-separated), sorted as GCS lists them. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.promises.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const parent = (e as { parentPath?: string }).parentPath ?? e.path;
    out.push(path.relative(dir, path.join(parent, e.name)).split(path.sep).join('/'));
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (RFC 9110 §14.1.2); anything else is ignored (whole object). */
function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | null {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), the checksum GCS reports: crc32c("123456789") = 0xE3069283. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
