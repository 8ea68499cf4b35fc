import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { ByteLru } from '../services/common/byte-lru.js';
import { etagMatches } from './router.js';

/** A JSON answer as it goes out: its bytes and their ETag. */
export interface CachedBody {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

/**
 * Answers of a read route, as bytes, by request: a key the route builds from everything the answer
 * depends on, the dataset's revision included (every change of a dataset bumps it; a delete
 * removes it, and the route checks the dataset still exists before answering from here), so the
 * same key always gets the same bytes. Bounded by their total size. A page answered from here
 * skips the query, the row conversion and the serialization: ~0.03 ms of the event loop against
 * ~1.1 ms (docs/performance-http.md). The ETag hashes the bytes: a page a change left as it was
 * keeps its ETag, as HTTP wants of a validator.
 */
export class ResponseCache {
  readonly #entries: ByteLru<CachedBody>;

  constructor(maxBytes: number) {
    this.#entries = new ByteLru(maxBytes, (e) => e.body.length + 128);
  }

  get(key: string): CachedBody | undefined {
    return this.#entries.get(key);
  }

  /** Serializes `value` once, keeps it under `key` (when it fits the budget) and returns it. */
  put(key: string, value: unknown): CachedBody {
    const body = new TextEncoder().encode(JSON.stringify(value));
    const entry = { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
    this.#entries.set(key, entry);
    return entry;
  }
}

/**
 * Answers with a cached body: 304 when the client already holds it (If-None-Match). The ETag lets
 * a grid that re-requests a page revalidate it for a few bytes; `no-cache` makes browsers ask
 * (the dataset may have been deleted since).
 */
export function sendCached(c: Context, entry: CachedBody): Response {
  c.header('ETag', entry.etag);
  c.header('Cache-Control', 'private, no-cache');
  if (etagMatches(c.req.header('If-None-Match'), entry.etag)) return c.body(null, 304);
  c.header('Content-Type', 'application/json');
  return c.body(entry.body, 200);
}
