import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { DataVisorError, isDataVisorError } from '../errors.js';
import type { RetryPolicy } from './store.js';

/**
 * Retries for bucket requests. Each backend says which of its errors are transient (throttling,
 * 5xx, dropped connections, timeouts) and what a failure means to DataVisor; the SDKs' own retries
 * are turned off so that one policy, with one attempt count, applies everywhere.
 */

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 };

export interface ErrorMapping {
  isTransient(e: unknown): boolean;
  /** The DataVisorError a failure becomes once it is final; `attempts` made so far. */
  toError(e: unknown, attempts: number): DataVisorError;
}

/** Socket-level failures worth another attempt, from Node and undici. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Thrown when a response's headers do not arrive in time; always transient. */
export class FirstByteTimeoutError extends Error {
  constructor(ms: number) {
    super(`no response within ${ms} ms`);
    this.name = 'FirstByteTimeoutError';
  }
}

/**
 * "Full jitter" exponential backoff (delay drawn from 0..base·2^n, capped): clients that failed
 * together do not retry together, which matters when the cause is throttling.
 */
export function backoffMs(policy: RetryPolicy, failedAttempts: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempts - 1));
  return Math.random() * ceiling;
}

export async function withRetry<T>(policy: RetryPolicy, mapping: ErrorMapping, op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      // Our own errors (a size cap) are final, whatever caused them.
      if (isDataVisorError(e)) throw e;
      if (attempt >= policy.attempts || !mapping.isTransient(e)) throw mapping.toError(e, attempt);
      await sleep(backoffMs(policy, attempt));
    }
  }
}

/**
 * Reads a stream into one Buffer, refusing it past `maxBytes`. The size announced by the
 * response, when known, sizes the buffer up front.
 */
export async function collect(stream: Readable, maxBytes: number, tooLarge: () => DataVisorError): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > maxBytes) throw tooLarge();
      chunks.push(b);
    }
  } finally {
    if (!stream.destroyed) stream.destroy();
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

export function tooLargeError(url: string, size: number | null, maxBytes: number): DataVisorError {
  const what = size === null ? `more than ${maxBytes} bytes` : `${size} bytes`;
  return new DataVisorError('PAYLOAD_TOO_LARGE', `${url} is ${what}, above the limit of ${maxBytes} bytes`);
}

/**
 * Once a stream is handed to a caller it may sit a few ticks before anything listens to it; an
 * 'error' with no listener would crash the process. The caller still sees the error: reading a
 * destroyed stream (for await, pipeline, Readable.toWeb) rejects with it.
 */
export function guardStream<S extends Readable>(stream: S): S {
  stream.on('error', () => undefined);
  return stream;
}
