import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Storage, type File } from '@google-cloud/storage';
import { DataVisorError } from '../errors.js';
import { listPages } from './list-pages.js';
import { formatLocation } from './location.js';
import {
  collect, FirstByteTimeoutError, guardStream, NETWORK_ERROR_CODES, tooLargeError, withRetry, type ErrorMapping,
} from './retry.js';
import { quoteEtag, type ObjectInfo, type ObjectStore, type ReadOptions, type StoreTuning } from './store.js';

export interface GcsOptions {
  /**
   * From STORAGE_EMULATOR_HOST, or any GCS-compatible server. With a custom endpoint the client
   * sends no credentials (its emulator mode), as local emulators expect.
   */
  apiEndpoint?: string | null;
  /** GOOGLE_APPLICATION_CREDENTIALS; unset: Application Default Credentials. */
  keyFilename?: string | null;
  projectId?: string | null;
}

export function createGcsClient(o: GcsOptions): Storage {
  return new Storage({
    apiEndpoint: o.apiEndpoint || undefined,
    keyFilename: o.keyFilename || undefined,
    projectId: o.projectId || undefined,
    // withRetry() retries, with one attempt count for S3 and GCS alike.
    retryOptions: { autoRetry: false, maxRetries: 0 },
  });
}

/** One Google Cloud Storage bucket, through Google's own client (JSON API). */
export class GcsStore implements ObjectStore {
  readonly kind = 'gs' as const;

  constructor(
    private readonly client: Storage,
    private readonly bucket: string,
    private readonly tuning: StoreTuning,
  ) {}

  url(key: string): string {
    return formatLocation({ kind: 'gs', bucket: this.bucket, key });
  }

  async stat(key: string): Promise<ObjectInfo> {
    const [m] = await withRetry(this.tuning.retry, this.errors(key), () => this.file(key).getMetadata());
    return {
      size: Number(m.size ?? 0),
      etag: quoteEtag(m.etag),
      lastModified: m.updated ? new Date(m.updated) : null,
      contentType: m.contentType ?? null,
    };
  }

  async openRead(key: string, options: ReadOptions = {}): Promise<Readable> {
    const { stream } = await withRetry(this.tuning.retry, this.errors(key), () => this.open(key, options));
    return guardStream(stream);
  }

  async readAll(key: string, options: { maxBytes: number }): Promise<Buffer> {
    const tooLarge = (size: number | null) => tooLargeError(this.url(key), size, options.maxBytes);
    // The whole read is retried, not only its opening: nothing has been handed out yet.
    return withRetry(this.tuning.retry, this.errors(key), async () => {
      const { stream, headers } = await this.open(key, {});
      const length = Number(headers['x-goog-stored-content-length'] ?? headers['content-length']);
      if (Number.isFinite(length) && length > options.maxBytes) {
        stream.destroy();
        throw tooLarge(length);
      }
      return collect(stream, options.maxBytes, () => tooLarge(null));
    });
  }

  list(dir: string): AsyncGenerator<string> {
    const prefix = dir === '' ? '' : `${dir}/`;
    const bucket = this.client.bucket(this.bucket);
    return listPages(async (pageToken) => {
      const [files, nextQuery] = await withRetry(this.tuning.retry, this.errors(dir), () =>
        bucket.getFiles({
          prefix, pageToken, autoPaginate: false, maxResults: this.tuning.listPageSize,
          // Partial response: names only, not ~1 KB of metadata per object.
          fields: 'items(name),nextPageToken',
        }),
      );
      return {
        // With `fields`, the client hands back the raw items ({name}) rather than File objects.
        names: files.flatMap((f) => {
          const name = (f as unknown as { name: string }).name;
          return name.length > prefix.length && !name.endsWith('/') ? [name.slice(prefix.length)] : [];
        }),
        next: (nextQuery as { pageToken?: string } | null)?.pageToken,
      };
    });
  }

  async presign(key: string, ttlSeconds: number): Promise<string> {
    const [url] = await this.file(key).getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + ttlSeconds * 1000 });
    return url;
  }

  private file(key: string): File {
    return this.client.bucket(this.bucket).file(key);
  }

  /**
   * The client's stream sends its request when first read and reports failures as stream errors;
   * waiting for the response here lets a 404 or a 503 be classified (and retried) before any byte
   * reaches the caller.
   */
  private open(key: string, options: ReadOptions): Promise<{ stream: Readable; headers: IncomingHttpHeaders }> {
    const stream = this.file(key).createReadStream({ start: options.start, end: options.end });
    const ms = this.tuning.firstByteTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new FirstByteTimeoutError(ms)), ms);
      const done = () => {
        clearTimeout(timer);
        stream.off('error', fail);
        stream.off('response', onResponse);
      };
      function fail(e: unknown) {
        done();
        stream.destroy();
        reject(e);
      }
      // An error status is followed by an 'error' carrying the parsed error body: wait for that.
      function onResponse(res: { statusCode?: number; headers: IncomingHttpHeaders }) {
        if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
          done();
          resolve({ stream, headers: res.headers });
        }
      }
      stream.on('error', fail);
      stream.on('response', onResponse);
      stream.read(0);
    });
  }

  private errors(key: string): ErrorMapping {
    return gcsErrors(this.url(key));
  }
}

interface GcsFailure {
  code?: number | string;
  name?: string;
  type?: string;
  message?: string;
  errors?: { reason?: string; message?: string }[];
}

export function gcsErrors(url: string): ErrorMapping {
  return {
    isTransient(e) {
      const f = e as GcsFailure;
      if (typeof f?.code === 'number') return f.code >= 500 || f.code === 429 || f.code === 408;
      return (
        NETWORK_ERROR_CODES.has(f?.code ?? '') ||
        f?.name === 'FirstByteTimeoutError' ||
        // The bytes did not match the object's CRC32C: a damaged transfer, worth reading again.
        f?.code === 'CONTENT_DOWNLOAD_MISMATCH' ||
        // node-fetch's own deadline (the client's 60 s request timeout).
        f?.type === 'request-timeout' ||
        /socket hang up|ECONNRESET/i.test(f?.message ?? '')
      );
    },
    toError(e, attempts) {
      const f = e as GcsFailure;
      const status = typeof f?.code === 'number' ? f.code : undefined;
      const reason = f?.errors?.[0]?.reason;
      const detail = firstLine(f?.errors?.[0]?.message ?? f?.message ?? String(e));
      if (status === 404) {
        const bucketMissing = /bucket/i.test(detail) && !/object/i.test(detail);
        return new DataVisorError('FILE_NOT_FOUND', bucketMissing ? `The bucket of ${url} does not exist` : `${url} does not exist`, { cause: e });
      }
      if (status === 401 || status === 403) {
        return new DataVisorError(
          'FORBIDDEN',
          `Access to ${url} was denied (${status}${reason ? ` ${reason}` : ''}): check the bucket's IAM and the credentials DataVisor runs with (GOOGLE_APPLICATION_CREDENTIALS)`,
          { cause: e },
        );
      }
      const why = `${status ?? f?.code ?? f?.name ?? 'Error'}${reason ? ` ${reason}` : ''}: ${detail}`;
      const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
      return new DataVisorError('UNAVAILABLE', `Could not read ${url}${tries} (${why})`, { cause: e });
    },
  };
}

function firstLine(s: string): string {
  const line = s.split('\n')[0]!.trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
