import { Readable } from 'node:stream';
import {
  GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DataVisorError } from '../errors.js';
import { listPages } from './list-pages.js';
import { formatLocation } from './location.js';
import {
  collect, FirstByteTimeoutError, guardStream, NETWORK_ERROR_CODES, tooLargeError, withRetry, type ErrorMapping,
} from './retry.js';
import { quoteEtag, type ObjectInfo, type ObjectStore, type ReadOptions, type StoreTuning } from './store.js';

export interface S3Options {
  /** AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL: an S3-compatible server (MinIO, s3rver, R2…). */
  endpoint?: string | null;
  region?: string | null;
  /** Defaults to true when an endpoint is set: compatible servers rarely have per-bucket host names. */
  forcePathStyle?: boolean;
  /** Unset: the SDK's default chain (environment, ~/.aws files, SSO, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
}

export function createS3Client(o: S3Options): S3Client {
  const endpoint = o.endpoint || undefined;
  return new S3Client({
    endpoint,
    // A local server has no region, but SigV4 signs one.
    region: o.region || (endpoint ? 'us-east-1' : undefined),
    forcePathStyle: o.forcePathStyle ?? endpoint !== undefined,
    credentials: o.credentials ?? undefined,
    // A bucket in another region than the one configured answers 301; follow it instead of failing.
    followRegionRedirects: true,
    // withRetry() retries, with one attempt count for S3 and GCS alike.
    maxAttempts: 1,
    // Validating checksums of whole objects costs a CPU pass over every byte (the annotation file
    // is ~450 MB), and some S3-compatible servers reject the trailing checksums of new SDKs.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 10_000 },
  });
}

/** One bucket of S3 or an S3-compatible server. */
export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly tuning: StoreTuning,
  ) {}

  url(key: string): string {
    return formatLocation({ kind: 's3', bucket: this.bucket, key });
  }

  async stat(key: string): Promise<ObjectInfo> {
    const out = await withRetry(this.tuning.retry, this.errors(key), () =>
      this.timed((abortSignal) => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal })),
    );
    return {
      size: out.ContentLength ?? 0,
      etag: quoteEtag(out.ETag),
      lastModified: out.LastModified ?? null,
      contentType: out.ContentType ?? null,
    };
  }

  async openRead(key: string, options: ReadOptions = {}): Promise<Readable> {
    const out = await withRetry(this.tuning.retry, this.errors(key), () => this.get(key, options));
    return guardStream(body(out));
  }

  async readAll(key: string, options: { maxBytes: number }): Promise<Buffer> {
    const tooLarge = (size: number | null) => tooLargeError(this.url(key), size, options.maxBytes);
    // The whole read is retried, not only its opening: nothing has been handed out yet.
    return withRetry(this.tuning.retry, this.errors(key), async () => {
      const out = await this.get(key, {});
      const stream = body(out);
      if (out.ContentLength !== undefined && out.ContentLength > options.maxBytes) {
        stream.destroy();
        throw tooLarge(out.ContentLength);
      }
      return collect(stream, options.maxBytes, () => tooLarge(null));
    });
  }

  list(dir: string): AsyncGenerator<string> {
    const prefix = dir === '' ? '' : `${dir}/`;
    return listPages(async (token) => {
      const page = await withRetry(this.tuning.retry, this.errors(dir), () =>
        this.timed((abortSignal) =>
          this.client.send(
            new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: this.tuning.listPageSize }),
            { abortSignal },
          ),
        ),
      );
      return {
        // Keys ending in "/" are the folder markers some tools create, not files.
        names: (page.Contents ?? []).flatMap((o) => (o.Key && o.Key.length > prefix.length && !o.Key.endsWith('/') ? [o.Key.slice(prefix.length)] : [])),
        next: page.IsTruncated && page.NextContinuationToken ? page.NextContinuationToken : undefined,
      };
    });
  }

  async presign(key: string, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: ttlSeconds });
  }

  private async get(key: string, options: ReadOptions): Promise<GetObjectCommandOutput> {
    const range = options.start !== undefined || options.end !== undefined ? `bytes=${options.start ?? 0}-${options.end ?? ''}` : undefined;
    return this.timed((abortSignal) => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }), { abortSignal }));
  }

  /**
   * Sends with a deadline on the response headers only: a body may stream for minutes (a 450 MB
   * annotation file parsed as it downloads) and must not be cut by a timer.
   */
  private async timed<T>(send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const ms = this.tuning.firstByteTimeoutMs;
    const timer = setTimeout(() => controller.abort(new FirstByteTimeoutError(ms)), ms);
    try {
      return await send(controller.signal);
    } catch (e) {
      throw controller.signal.aborted ? controller.signal.reason : e;
    } finally {
      clearTimeout(timer);
    }
  }

  private errors(key: string): ErrorMapping {
    return s3Errors(this.url(key), this.bucket);
  }
}

function body(out: GetObjectCommandOutput): Readable {
  if (!(out.Body instanceof Readable)) throw new DataVisorError('INTERNAL', 'the S3 client returned a body that is not a Node stream');
  return out.Body;
}

interface S3Failure {
  name?: string;
  code?: string;
  message?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Error names S3 and compatible servers use for "slow down, try again". */
const TRANSIENT_NAMES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'RequestThrottledException',
  'TooManyRequestsException', 'RequestLimitExceeded', 'BandwidthLimitExceeded', 'RequestTimeout', 'RequestTimeoutException',
  'InternalError', 'ServiceUnavailable', 'TimeoutError', 'FirstByteTimeoutError', 'PriorRequestNotComplete',
]);
const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);
const DENIED_NAMES = new Set(['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'ExpiredToken', 'InvalidToken']);

export function s3Errors(url: string, bucket: string): ErrorMapping {
  return {
    isTransient(e) {
      const f = e as S3Failure;
      const status = f?.$metadata?.httpStatusCode;
      return (
        (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
        TRANSIENT_NAMES.has(f?.name ?? '') ||
        NETWORK_ERROR_CODES.has(f?.code ?? '') ||
        Boolean(f?.$retryable)
      );
    },
    toError(e, attempts) {
      const f = e as S3Failure;
      const status = f?.$metadata?.httpStatusCode;
      const name = f?.name ?? 'Error';
      if (name === 'NoSuchBucket') return new DataVisorError('FILE_NOT_FOUND', `Bucket ${JSON.stringify(bucket)} of ${url} does not exist`, { cause: e });
      if (status === 404 || NOT_FOUND_NAMES.has(name)) return new DataVisorError('FILE_NOT_FOUND', `${url} does not exist`, { cause: e });
      if (status === 403 || status === 401 || DENIED_NAMES.has(name)) {
        return new DataVisorError(
          'FORBIDDEN',
          `Access to ${url} was denied (${name}): check the bucket's policy and the AWS credentials DataVisor runs with`,
          { cause: e },
        );
      }
      const why = `${name}${status ? ` ${status}` : ''}${f?.message && f.message !== name ? `: ${f.message}` : ''}`;
      const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
      return new DataVisorError('UNAVAILABLE', `Could not read ${url}${tries} (${why})`, { cause: e });
    },
  };
}
