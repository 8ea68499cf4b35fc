import type { Readable } from 'node:stream';
import type { StoreKind } from './location.js';

/**
 * One interface over local disk, S3 and GCS. Keys are object keys within one bucket (a store is
 * made per bucket), or absolute paths for the local store. Every method throws DataVisorError:
 * FILE_NOT_FOUND for a missing object or bucket, FORBIDDEN when access is denied, UNAVAILABLE
 * when the service keeps failing after retries, PAYLOAD_TOO_LARGE past readAll's cap.
 */
export interface ObjectStore {
  readonly kind: StoreKind;
  /** How a key is named in messages and stored rows: `s3://bucket/key`, `gs://…`, or the path. */
  url(key: string): string;
  stat(key: string): Promise<ObjectInfo>;
  /**
   * Streams an object (or the inclusive byte range `start`..`end`), never buffering it whole.
   * Opening is retried on transient errors; a failure mid-stream is the stream's error, since
   * bytes already handed out cannot be taken back.
   */
  openRead(key: string, options?: ReadOptions): Promise<Readable>;
  /** The whole object in memory, refused above `maxBytes` (checked before the body is read when the size is known). */
  readAll(key: string, options: { maxBytes: number }): Promise<Buffer>;
  /** Names of every object under the folder `dir` ('' = everything), relative to it, page by page. */
  list(dir: string): AsyncIterable<string>;
  /** A URL that reads the object without credentials until it expires (S3, GCS with signing credentials). */
  presign?(key: string, ttlSeconds: number): Promise<string>;
}

export interface ObjectInfo {
  size: number;
  /** Quoted, ready for an HTTP ETag header. */
  etag: string | null;
  lastModified: Date | null;
  contentType: string | null;
}

/** Buffers a block reader may read into: blocks its consumer is done with, handed back. */
export interface BlockBuffers {
  take(): Uint8Array | undefined;
}

export interface ReadOptions {
  start?: number;
  /** Inclusive, as in HTTP ranges and fs.createReadStream. */
  end?: number;
}

/** Knobs shared by the bucket stores; tests shrink them to exercise paging and retries quickly. */
export interface StoreTuning {
  retry: RetryPolicy;
  /** Keys per list request (S3 and GCS both allow at most 1,000). */
  listPageSize: number;
  /** A request whose response headers have not arrived by then is abandoned and retried. */
  firstByteTimeoutMs: number;
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** An ETag as HTTP wants it: GCS hands out bare ones, S3 quoted ones. */
export function quoteEtag(etag: string | null | undefined): string | null {
  if (!etag) return null;
  return etag.startsWith('"') || etag.startsWith('W/"') ? etag : `"${etag}"`;
}
