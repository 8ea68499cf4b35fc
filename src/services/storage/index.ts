import fs from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Storage } from '@google-cloud/storage';
import { DataVisorError, ForbiddenError, isDataVisorError } from '../errors.js';
import type { Logger } from '../logger.js';
import { listImageEntries } from '../images/image-files.js';
import { isWithinRoots, resolveAllowedPath, resolveImageFile } from './paths.js';
import type { GcsOptions } from './gcs.js';
import { LocalStore } from './local.js';
import { formatLocation, imageKey, isWithinBucketRoot, parseLocation, type BucketLocation, type Location } from './location.js';
import { DEFAULT_RETRY } from './retry.js';
import type { S3Options } from './s3.js';
import type { BlockBuffers, ObjectInfo, ObjectStore, RetryPolicy, StoreTuning } from './store.js';

export type { ObjectInfo, ObjectStore, RetryPolicy, StoreTuning };
export type { BucketLocation, Location } from './location.js';
export { formatLocation, isBucketUrl, parseLocation } from './location.js';
export { commonDir } from './paths.js';
export type { S3Options } from './s3.js';
export type { GcsOptions } from './gcs.js';

export interface StorageOptions {
  /** Local folders and bucket prefixes ingestion may read (DATAVISOR_DATA_ROOTS). */
  dataRoots: readonly string[];
  s3?: S3Options;
  gcs?: GcsOptions;
  /** DATAVISOR_PRESIGN: originals in buckets may be handed out as presigned URLs. */
  presign?: boolean;
  presignTtlSeconds?: number;
  /** Largest source image read into memory for a thumbnail. */
  maxImageBytes?: number;
  retry?: Partial<RetryPolicy>;
  listPageSize?: number;
  firstByteTimeoutMs?: number;
  log?: Logger;
}

/** A location given to ingestion, checked against the data roots and found to exist. */
export interface InputLocation {
  /** What the dataset stores: the real local path, or the normalized `s3://` / `gs://` URL. */
  url: string;
  location: Location;
  store: ObjectStore;
  /** The store's key: the real path, or the object key (prefix, for a folder). */
  key: string;
  /** Files: their size in bytes; folders: null. */
  size: number | null;
  /** A folder (a local directory, or a bucket prefix holding objects) rather than a file. */
  isDirectory: boolean;
}

/** A file of an image folder; `readable`: false for a link that leads outside the data roots. */
export interface ListedFile {
  name: string;
  readable: boolean;
}

/** Links of a listing resolved at once (realpath in libuv's pool): ~18 µs each on this machine. */
const LINK_BATCH = 256;

/** A sample's original, ready to be served. */
export interface ImageObject {
  store: ObjectStore;
  key: string;
  info: ObjectInfo;
  /** Local files only: the real path. */
  path: string | null;
}

/** 64 MiB: far above any photo (COCO's largest JPEG is ~1 MB), low enough that 4 in flight fit in memory. */
export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

/**
 * Resolves paths and bucket URLs to stores, and enforces the data roots for both. One S3 client
 * and one GCS client are shared by every bucket (they pool connections), made on first use: the
 * two SDKs are imported only then, since loading them costs every process ~40 MB and ~0.3 s.
 */
export class StorageService {
  readonly local = new LocalStore();
  readonly presignEnabled: boolean;
  readonly presignTtlSeconds: number;
  readonly maxImageBytes: number;
  readonly #tuning: StoreTuning;
  readonly #localRoots: string[] = [];
  readonly #bucketRoots: BucketLocation[] = [];
  readonly #stores = new Map<string, Promise<ObjectStore>>();
  #s3: S3Client | null = null;
  #gcs: Storage | null = null;

  constructor(private readonly opts: StorageOptions) {
    for (const root of opts.dataRoots) {
      const loc = parseLocation('DATAVISOR_DATA_ROOTS entry', root);
      if (loc.kind === 'local') this.#localRoots.push(loc.path);
      else this.#bucketRoots.push(loc);
    }
    this.#tuning = {
      retry: { ...DEFAULT_RETRY, ...opts.retry },
      listPageSize: opts.listPageSize ?? 1000,
      firstByteTimeoutMs: opts.firstByteTimeoutMs ?? 30_000,
    };
    this.presignEnabled = opts.presign ?? false;
    this.presignTtlSeconds = opts.presignTtlSeconds ?? 900;
    this.maxImageBytes = opts.maxImageBytes ?? MAX_IMAGE_BYTES;
  }

  /** The store and key of a location that is already trusted (a stored dataset's folder). */
  async locate(text: string): Promise<{ store: ObjectStore; key: string; location: Location }> {
    const location = parseLocation('location', text);
    if (location.kind === 'local') return { store: this.local, key: location.path, location };
    return { store: await this.storeOf(location), key: location.key, location };
  }

  storeOf(loc: BucketLocation): Promise<ObjectStore> {
    const id = `${loc.kind}://${loc.bucket}`;
    let store = this.#stores.get(id);
    if (!store) this.#stores.set(id, (store = this.#makeStore(loc)));
    return store;
  }

  async #makeStore(loc: BucketLocation): Promise<ObjectStore> {
    if (loc.kind === 's3') {
      const { createS3Client, S3Store } = await import('./s3.js');
      // Synchronous after the import: concurrent first uses share one client.
      return new S3Store((this.#s3 ??= createS3Client(this.opts.s3 ?? {})), loc.bucket, this.#tuning);
    }
    const { createGcsClient, GcsStore } = await import('./gcs.js');
    return new GcsStore((this.#gcs ??= createGcsClient(this.opts.gcs ?? {})), loc.bucket, this.#tuning);
  }

  /**
   * A path or bucket URL given to ingestion. Refused with FORBIDDEN outside the data roots (before
   * anything is read, so existence is not revealed); FILE_NOT_FOUND when the file does not exist,
   * or when a bucket "folder" holds no object (buckets have no empty folders).
   */
  async resolveInput(label: string, text: string, kind: 'file' | 'directory' | 'any'): Promise<InputLocation> {
    const location = parseLocation(label, text);
    if (location.kind === 'local') {
      const real = await resolveAllowedPath(label, text, this.#localRoots, kind);
      const isDirectory = kind === 'directory' || (kind === 'any' && (await fs.stat(real)).isDirectory());
      const size = isDirectory ? null : (await this.local.stat(real)).size;
      return { url: real, location: { kind: 'local', path: real }, store: this.local, key: real, size, isDirectory };
    }
    if (!this.#bucketRoots.some((r) => isWithinBucketRoot(r, location))) {
      throw new ForbiddenError(`${label} ${JSON.stringify(text)} is outside the allowed data roots (DATAVISOR_DATA_ROOTS)`);
    }
    const store = await this.storeOf(location);
    const url = formatLocation(location);
    let size: number | null = null;
    // 'any': an object of that key is a file; otherwise the key is a folder (a prefix).
    const object = kind === 'any' && location.key !== '' && !location.key.endsWith('/') ? await statIfObject(store, location.key) : null;
    const file = kind === 'file' || object !== null;
    if (file) {
      if (location.key === '') throw new DataVisorError('BAD_USER_INPUT', `${label} ${JSON.stringify(text)} names a bucket, not a file`);
      size = (object ?? (await store.stat(location.key))).size;
    } else if (!(await hasAny(store.list(location.key)))) {
      throw new DataVisorError('FILE_NOT_FOUND', `${label} ${JSON.stringify(text)} holds no object`);
    }
    return { url, location, store, key: location.key, size, isDirectory: !file };
  }

  /**
   * An input file, or its bytes `start` (inclusive) to `end` (exclusive), in `blockSize` blocks: a
   * local file is read in them (into `buffers` when it has some), a download is regrouped.
   */
  async openInput(input: InputLocation, blockSize: number, range?: { start: number; end: number }, buffers?: BlockBuffers): Promise<AsyncIterable<Uint8Array>> {
    const bounds = range ? { start: range.start, end: range.end - 1 } : {};
    if (input.store.kind === 'local') return this.local.readBlocks(input.key, blockSize, bounds, buffers);
    return rechunk(await input.store.openRead(input.key, bounds), blockSize);
  }

  /**
   * The files of an input folder, for the missing-file check. A local symlink is resolved: one
   * into the data roots is a file like any other (DVC and git-annex keep image folders of links
   * into a content store), one out of them is listed as not readable, and a dangling one (content
   * not fetched) not at all. Only links pay for a lookup.
   */
  async *listImages(dir: InputLocation): AsyncGenerator<ListedFile> {
    if (dir.store.kind !== 'local') {
      for await (const name of dir.store.list(dir.key)) yield { name, readable: true };
      return;
    }
    let links: string[] = [];
    for await (const entry of listImageEntries(dir.key)) {
      if (!entry.link) yield { name: entry.name, readable: true };
      else if (links.push(entry.name) === LINK_BATCH) {
        yield* await this.#resolveLinks(dir.key, links);
        links = [];
      }
    }
    yield* await this.#resolveLinks(dir.key, links);
  }

  async #resolveLinks(dir: string, names: string[]): Promise<ListedFile[]> {
    const targets = await Promise.all(names.map((name) => fs.realpath(path.join(dir, name)).catch(() => null)));
    const out: ListedFile[] = [];
    for (let i = 0; i < names.length; i++) {
      const target = targets[i];
      if (target != null) out.push({ name: names[i]!, readable: await isWithinRoots(target, this.#localRoots) });
    }
    return out;
  }

  /**
   * The source of a thumbnail: a local path (sharp reads the file itself) or, from a bucket, the
   * bytes. Missing images are FILE_NOT_FOUND; images above maxImageBytes UNPROCESSABLE_IMAGE.
   */
  async imageSource(imageDir: string, fileName: string): Promise<string | Buffer> {
    const { store, location } = await this.locate(imageDir);
    try {
      if (location.kind === 'local') return await resolveImageFile(location.path, fileName, this.#localRoots);
      return await store.readAll(imageKey(location, fileName), { maxBytes: this.maxImageBytes });
    } catch (e) {
      throw imageError(e, fileName);
    }
  }

  /** Metadata of a sample's original; FILE_NOT_FOUND (naming only `file_name`) when it is gone. */
  async imageObject(imageDir: string, fileName: string): Promise<ImageObject> {
    const { store, location } = await this.locate(imageDir);
    try {
      const key = location.kind === 'local' ? await resolveImageFile(location.path, fileName, this.#localRoots) : imageKey(location, fileName);
      return { store, key, info: await store.stat(key), path: location.kind === 'local' ? key : null };
    } catch (e) {
      throw imageError(e, fileName);
    }
  }

  /** A presigned URL when DATAVISOR_PRESIGN is on and the store can sign; otherwise null (stream it). */
  async presign(store: ObjectStore, key: string): Promise<string | null> {
    if (!this.presignEnabled || !store.presign) return null;
    try {
      return await store.presign(key, this.presignTtlSeconds);
    } catch (err) {
      // GCS signs with a service-account key; without one (ADC user credentials, an emulator) serve the bytes.
      this.opts.log?.warn({ err, url: store.url(key) }, 'could not presign; streaming the object instead');
      return null;
    }
  }

  close(): void {
    this.#s3?.destroy();
    this.#s3 = null;
    this.#gcs = null;
    this.#stores.clear();
  }
}

async function hasAny(names: AsyncIterable<string>): Promise<boolean> {
  const it = names[Symbol.asyncIterator]();
  try {
    return !(await it.next()).done;
  } finally {
    await it.return?.();
  }
}

/** Messages shown to API clients name the sample's file, never the folder or bucket behind it. */
function imageError(e: unknown, fileName: string): unknown {
  if (!(e instanceof DataVisorError)) return e;
  if (e.code === 'FILE_NOT_FOUND') return new DataVisorError('FILE_NOT_FOUND', `Image file ${JSON.stringify(fileName)} does not exist`, { cause: e });
  if (e.code === 'PAYLOAD_TOO_LARGE') return new DataVisorError('UNPROCESSABLE_IMAGE', `Image file ${JSON.stringify(fileName)} is too large to make a thumbnail of`, { cause: e });
  return e;
}

/**
 * Network reads arrive in 16-64 KiB pieces; the COCO parser forwards each piece to its thread
 * and keeps only 4 in flight, so it wants the same 256 KiB blocks a local file gives it.
 */
/** The object of that key, or null when there is none; other failures are thrown. */
async function statIfObject(store: ObjectStore, key: string): Promise<ObjectInfo | null> {
  try {
    return await store.stat(key);
  } catch (e) {
    if (isDataVisorError(e) && e.code === 'FILE_NOT_FOUND') return null;
    throw e;
  }
}

export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  for await (const chunk of source) {
    if (held === 0 && chunk.byteLength >= size) {
      yield chunk;
      continue;
    }
    parts.push(chunk);
    held += chunk.byteLength;
    if (held >= size) {
      yield Buffer.concat(parts, held);
      parts = [];
      held = 0;
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
}

