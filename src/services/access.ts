import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { ThumbnailSize } from './images/thumbnails.js';

/**
 * Access control of the API (docs/security.md): the bearer token, and the signatures that let an
 * image URL handed out by the API work in a plain `<img src>`, which cannot carry a header.
 *
 * With no token configured everything is open and image URLs are unsigned, exactly as before.
 */

export type ImageSize = ThumbnailSize | 'original';

/** `ok`; `expired` (a genuine signature past its `exp`); `invalid` (missing, malformed, tampered, or made for another image). */
export type SignatureCheck = 'ok' | 'expired' | 'invalid';

export interface AccessOptions {
  /** DATAVISOR_API_TOKEN; undefined: no access control. */
  token: string | undefined;
  /** Seconds a signed image URL is valid at least (DATAVISOR_IMAGE_URL_TTL). */
  imageUrlTtl: number;
  /** Clock in milliseconds; tests may pin it. */
  now?: () => number;
}

/**
 * The image-URL key is derived from the token rather than being the token: a signature never
 * exposes the token, the label versions the scheme, and rotating the token revokes every URL.
 */
const IMAGE_KEY_LABEL = 'datavisor image urls v1';
/** base64url of 32 bytes, no padding. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
/** Unix seconds as plain decimal text; 12 digits reach the year 33658. */
const EXPIRY = /^[0-9]{1,12}$/;

export class AccessService {
  /** Whether a token is configured, i.e. whether anything is checked at all. */
  readonly enabled: boolean;
  readonly imageUrlTtl: number;
  readonly #tokenDigest: Buffer | null;
  readonly #imageKey: KeyObject | null;
  /** `exp` is rounded up to a multiple of this (seconds): see imageExpiry(). */
  readonly #bucket: number;
  readonly #now: () => number;

  constructor(opts: AccessOptions) {
    this.enabled = opts.token !== undefined && opts.token !== '';
    this.imageUrlTtl = opts.imageUrlTtl;
    this.#tokenDigest = this.enabled ? sha256(opts.token!) : null;
    this.#imageKey = this.enabled ? createSecretKey(createHmac('sha256', opts.token!).update(IMAGE_KEY_LABEL).digest()) : null;
    this.#bucket = Math.max(1, Math.floor(opts.imageUrlTtl / 4));
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Whether an `Authorization` header carries the token (`Bearer <token>`, scheme in any case).
   * Both sides are hashed first and the digests compared with timingSafeEqual, so neither the
   * content nor the length of the token can be learnt from response times. True when no token is
   * configured.
   */
  checkAuthorization(header: string | undefined | null): boolean {
    if (!this.#tokenDigest) return true;
    if (!header || header.length <= 7 || header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(sha256(header.slice(7).trim()), this.#tokenDigest);
  }

  /**
   * The query parameters (`exp=…&sig=…`) that authorise exactly this image until `expiresAt`
   * (unix seconds): the signature is HMAC-SHA256 over `datasetId\nsampleId\nsize\nexp`.
   */
  signImagePath(datasetId: string, sampleId: number | string, size: ImageSize, expiresAt: number): string {
    const key = this.#requireKey();
    const exp = String(Math.trunc(expiresAt));
    return `exp=${exp}&sig=${imageSignature(key, datasetId, String(sampleId), size, exp)}`;
  }

  /**
   * Checks the `exp` and `sig` of a request against the image it asks for. The values are the raw
   * texts of the URL, and `sampleId`/`size` those the route serves, so a signature only ever opens
   * the one (dataset, sample, size) it was made for. One HMAC; compared in constant time.
   */
  verifyImageSignature(
    datasetId: string,
    sampleId: string,
    size: string,
    exp: string | undefined,
    sig: string | undefined,
    nowMs: number = this.#now(),
  ): SignatureCheck {
    const key = this.#requireKey();
    if (exp === undefined || sig === undefined || !EXPIRY.test(exp) || !SIGNATURE.test(sig)) return 'invalid';
    // A field holding the separator could make two different images sign the same text.
    if (datasetId.includes('\n') || sampleId.includes('\n')) return 'invalid';
    // The texts are compared, not the decoded bytes: base64url has spare bits in its last
    // character, so several texts decode alike and a URL could be varied without the key.
    const expected = Buffer.from(imageSignature(key, datasetId, sampleId, size, exp), 'latin1');
    if (!timingSafeEqual(expected, Buffer.from(sig, 'latin1'))) return 'invalid';
    return Number(exp) * 1000 > nowMs ? 'ok' : 'expired';
  }

  /**
   * The `exp` of URLs handed out now: at least the TTL ahead, rounded up to the next multiple of
   * TTL/4. Every response within that quarter hands out the same URL for an image, so browsers
   * (and the immutable Cache-Control of thumbnails) keep hitting their cache instead of
   * downloading the image again under a URL that differs only by its expiry. A URL thus lives
   * between TTL and 1.25 × TTL.
   */
  imageExpiry(nowMs: number = this.#now()): number {
    const earliest = Math.ceil(nowMs / 1000) + this.imageUrlTtl;
    return Math.ceil(earliest / this.#bucket) * this.#bucket;
  }

  /**
   * What the image URLs handed out now depend on besides their image: the expiry they carry, 0
   * when unsigned. An answer holding URLs may be reused while this stays the same.
   */
  imageUrlEpoch(): number {
    return this.enabled ? this.imageExpiry() : 0;
  }

  /** `&exp=…&sig=…` for an image URL handed out now; empty without a token (URLs stay unsigned). */
  imageQuerySuffix(datasetId: string, sampleId: number | string, size: ImageSize): string {
    return this.enabled ? `&${this.signImagePath(datasetId, sampleId, size, this.imageExpiry())}` : '';
  }

  /**
   * `exp=…&sig=…` to append (last) to an export URL handed out now (GraphQL `exportUrl`), so a
   * browser can download it without the token, as an image URL. The signature covers the path and
   * query before it exactly (`pathAndQuery`, e.g. `/datasets/x/export?format=coco&split=val`): a
   * changed parameter invalidates it. Its text has three fields, the image signature's four, so one
   * can never pass for the other. Empty without a token.
   */
  exportQuerySuffix(pathAndQuery: string): string {
    if (!this.enabled) return '';
    const exp = String(this.imageExpiry());
    return `exp=${exp}&sig=${exportSignature(this.#requireKey(), pathAndQuery, exp)}`;
  }

  /** Checks an export URL's `exp` and `sig` against the path and query that precede them. */
  verifyExportSignature(pathAndQuery: string, exp: string | undefined, sig: string | undefined, nowMs: number = this.#now()): SignatureCheck {
    const key = this.#requireKey();
    if (exp === undefined || sig === undefined || !EXPIRY.test(exp) || !SIGNATURE.test(sig) || pathAndQuery.includes('\n')) return 'invalid';
    const expected = Buffer.from(exportSignature(key, pathAndQuery, exp), 'latin1');
    if (!timingSafeEqual(expected, Buffer.from(sig, 'latin1'))) return 'invalid';
    return Number(exp) * 1000 > nowMs ? 'ok' : 'expired';
  }

  #requireKey(): KeyObject {
    if (!this.#imageKey) throw new Error('image URLs are only signed when DATAVISOR_API_TOKEN is set');
    return this.#imageKey;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function imageSignature(key: KeyObject, datasetId: string, sampleId: string, size: string, exp: string): string {
  return createHmac('sha256', key).update(`${datasetId}\n${sampleId}\n${size}\n${exp}`, 'utf8').digest('base64url');
}

function exportSignature(key: KeyObject, pathAndQuery: string, exp: string): string {
  return createHmac('sha256', key).update(`export\n${pathAndQuery}\n${exp}`, 'utf8').digest('base64url');
}
