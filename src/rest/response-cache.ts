import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { ByteLru } from '../services/common/byte-lru.js';
import { encode, MIN_COMPRESS_BYTES, negotiate, varyOnEncoding, weakEtag, type Encoding } from './compression.js';
import { etagMatches, type AppEnv } from './router.js';

/** A JSON answer as it goes out: its bytes and their ETag. */
export interface CachedBody {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
  /** The body compressed, made by the first request that takes each encoding, then kept (compression.ts). */
  encoded: Partial<Record<Encoding, Uint8Array<ArrayBuffer>>>;
}

const sizeOf = (e: CachedBody) => e.body.length + (e.encoded.br?.length ?? 0) + (e.encoded.gzip?.length ?? 0) + 128;

/**
 * Answers of a read route, as bytes, by request: a key the route builds from everything the answer
 * depends on, the dataset's revision included (every change of a dataset bumps it; a delete
 * removes it, and the route checks the dataset still exists before answering from here), so the
 * same key always gets the same bytes. Bounded by their total size. A page answered from here
 * skips the query, the row conversion and the serialization: ~0.03 ms of the event loop against
 * ~1.1 ms (docs/performance-http.md); its compressed bytes are kept with it, so a browser's
 * `Accept-Encoding: br` costs a compression once, not per request. The ETag hashes the bytes: a
 * page a change left as it was keeps its ETag, as HTTP wants of a validator.
 */
export class ResponseCache {
  readonly #entries: ByteLru<CachedBody>;

  constructor(maxBytes: number) {
    this.#entries = new ByteLru(maxBytes, sizeOf);
  }

  get(key: string): CachedBody | undefined {
    return this.#entries.get(key);
  }

  /** Serializes `value` once, keeps it under `key` (when it fits the budget) and returns it. */
  put(key: string, value: unknown): CachedBody {
    const body = new TextEncoder().encode(JSON.stringify(value));
    const entry: CachedBody = { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"`, encoded: {} };
    this.#entries.set(key, entry);
    return entry;
  }

  /**
   * Answers with a cached body, compressed when the client takes it and the body is worth it; 304
   * when the client already holds it (If-None-Match). The ETag lets a grid that re-requests a page
   * revalidate it for a few bytes; `no-cache` makes browsers ask (the dataset may have been deleted since).
   */
  async send(c: Context<AppEnv>, key: string, entry: CachedBody): Promise<Response> {
    const encoding = entry.body.length >= MIN_COMPRESS_BYTES ? negotiate(c.req.header('Accept-Encoding')) : null;
    if (entry.body.length >= MIN_COMPRESS_BYTES) varyOnEncoding(c);
    c.header('ETag', encoding ? weakEtag(entry.etag) : entry.etag);
    c.header('Cache-Control', 'private, no-cache');
    if (etagMatches(c.req.header('If-None-Match'), entry.etag)) return c.body(null, 304);
    c.header('Content-Type', 'application/json');
    if (!encoding) return c.body(entry.body, 200);
    c.header('Content-Encoding', encoding);
    return c.body(await this.#encoded(key, entry, encoding), 200);
  }

  async #encoded(key: string, entry: CachedBody, encoding: Encoding): Promise<Uint8Array<ArrayBuffer>> {
    let bytes = entry.encoded[encoding];
    if (!bytes) {
      bytes = (await encode(entry.body, encoding)) as Uint8Array<ArrayBuffer>;
      entry.encoded[encoding] = bytes;
      // Set again, so that the budget counts the new bytes (unless it was evicted meanwhile).
      if (this.#entries.get(key) === entry) this.#entries.set(key, entry);
    }
    return bytes;
  }
}
