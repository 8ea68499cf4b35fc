import { createHash } from 'node:crypto';
import { ByteLru } from '../common/byte-lru.js';
import { BadInputError, DataVisorError, type ErrorCode } from '../errors.js';
import { Semaphore } from '../common/semaphore.js';
import { loadThumbnailSource, RENDER_VERSION, renderThumbnail, type CropSpec } from './thumbnail-render.js';
import { assertDatasetId, ThumbnailStore, type ThumbnailPath } from './thumbnail-store.js';
import { readWebpSize } from './webp-header.js';

export type ThumbnailSize = 'small' | 'medium' | 'large';

export const THUMBNAIL_WIDTHS: Record<ThumbnailSize, number> = { small: 128, medium: 256, large: 512 };

export interface ThumbnailRequest {
  /** The cache is grouped per dataset so a dataset's folder can be deleted at once. */
  datasetId: string;
  /** Stable identity of the source image within the dataset (e.g. COCO image id). */
  sampleKey: string;
  size: ThumbnailSize;
  /** A region of the image instead of all of it (an object's crop); part of every cache key. */
  crop?: CropSpec;
  /** Returns the source image: a local file path or the bytes (bucket storage will pass bytes). */
  loadSource: () => Promise<string | Buffer>;
}

/** Shared between callers and cached: treat `body` as read-only. */
export interface Thumbnail {
  body: Buffer;
  etag: string;
  contentType: 'image/webp';
  width: number;
  height: number;
}

export interface ThumbnailServiceOptions {
  cacheDir: string;
  /** Images loaded and decoded at once; 4 keeps both cores busy (~190/s vs ~100/s one at a time). */
  concurrency?: number;
  /** Larger images are refused before decoding (decompression bombs). */
  maxInputPixels?: number;
  /** Budget of the in-memory cache of recently served thumbnails. */
  memoryCacheBytes?: number;
  /** Told about cache writes that failed (disk full); the thumbnail was served anyway. */
  onWriteError?: (err: unknown) => void;
  /** How long no decode may run before the writes deferred during a burst start (default 50 ms). */
  writeIdleMs?: number;
}

/**
 * Bytes of made thumbnails whose disk write may wait for the decoders to go idle. Creating a file
 * costs the kernel 0.1–0.8 ms of CPU (inode and folder allocation), which during a burst of cold
 * requests is taken from decoding; past this budget writes happen at once again.
 */
const DEFERRED_WRITE_BYTES = 16 * 1024 * 1024;
/**
 * Idle means no decode for this long. Within a burst the decoders are briefly all free between one
 * request's answer and the next request's decode; writing then puts file creation (and the pool
 * threads it occupies) in the middle of the burst.
 */
const WRITE_IDLE_MS = 50;
/** Deferred writes run this many at a time, and stop as soon as a decode starts. */
const DRAIN_BATCH = 4;
/**
 * A stream of misses that never pauses would keep its writes queued for as long as it lasts, and a
 * thumbnail that left the memory cache meanwhile would be made again: a write waits at most this long.
 */
const MAX_WRITE_DELAY_MS = 2000;

interface DeferredWrite {
  datasetId: string;
  at: ThumbnailPath;
  body: Buffer;
  /** performance.now() when it was queued. */
  queued: number;
}

/**
 * Failures that are the image's own fault: warm() reports them as `false` instead of throwing. A
 * refused file name or link (FORBIDDEN) is one sample's problem, never its dataset's.
 */
const IMAGE_FAULTS: ReadonlySet<ErrorCode> = new Set(['UNPROCESSABLE_IMAGE', 'FILE_NOT_FOUND', 'NOT_FOUND', 'FORBIDDEN']);

/**
 * WebP thumbnails, looked up in memory, then on disk, then generated. Serving from memory is what
 * lets the image route pass 10,000 req/s: reading the file per request tops out near 6,400/s.
 */
export class ThumbnailService {
  readonly stats = { generated: 0, diskHits: 0, memoryHits: 0 };

  readonly #store: ThumbnailStore;
  readonly #decodeSlots: Semaphore;
  /** Sources being found or downloaded, or waiting for a decode slot: twice the decode slots. */
  readonly #sourceSlots: Semaphore;
  readonly #maxInputPixels: number;
  readonly #onWriteError: (err: unknown) => void;
  readonly #writeIdleMs: number;
  readonly #memory: ByteLru<Thumbnail>;
  /** One promise per thumbnail being looked up or made, so concurrent requests decode once. */
  readonly #inFlight = new Map<string, Promise<Thumbnail>>();
  /** Bumped by removeDataset; work that began under an older epoch must not repopulate caches. */
  readonly #epochs = new Map<string, number>();
  /** Disk writes per dataset, which removeDataset waits for so none lands after the deletion. */
  readonly #writes = new Map<string, Set<Promise<void>>>();
  /** Write-behind: thumbnails made during a burst, written once no decode is running. */
  #deferred: DeferredWrite[] = [];
  #deferredBytes = 0;
  #decoding = 0;
  /** When the last decode ended (performance.now()), to tell a pause in a burst from idleness. */
  #lastDecodeEnd = 0;
  #drainTimer: NodeJS.Timeout | undefined;
  #draining = false;
  /** Set by stop(): work still waiting for a slot is refused. */
  #stopped = false;

  constructor(opts: ThumbnailServiceOptions) {
    this.#store = new ThumbnailStore(opts.cacheDir);
    this.#decodeSlots = new Semaphore(opts.concurrency ?? 4);
    this.#sourceSlots = new Semaphore(2 * (opts.concurrency ?? 4));
    this.#maxInputPixels = opts.maxInputPixels ?? 100e6;
    this.#onWriteError = opts.onWriteError ?? (() => undefined);
    this.#writeIdleMs = opts.writeIdleMs ?? WRITE_IDLE_MS;
    this.#memory = new ByteLru(opts.memoryCacheBytes ?? 64 * 1024 * 1024, (t) => t.body.length);
  }

  async get(req: ThumbnailRequest): Promise<Thumbnail> {
    const id = memoryKey(req);
    const hit = this.#memory.get(id);
    if (hit) {
      this.stats.memoryHits++;
      return hit;
    }
    return this.#load(id, req);
  }

  /**
   * Generates ahead of time, onto disk, without reading cached thumbnails into memory. Resolves false when the
   * image itself is at fault (undecodable, missing); other failures, like a full disk, still throw.
   */
  async warm(req: ThumbnailRequest): Promise<boolean> {
    const id = memoryKey(req);
    try {
      const pending = this.#inFlight.get(id);
      if (pending) await pending;
      else if (this.#memory.get(id)) this.stats.memoryHits++;
      else if (await this.#store.has(this.#locate(req))) this.stats.diskHits++;
      else await this.#load(id, req);
      // Warming fills the disk cache (ingestion's pre-generation): write what waits, and wait for it.
      this.#writeDeferred(this.#takeDeferred((w) => w.datasetId === req.datasetId));
      await Promise.allSettled([...(this.#writes.get(req.datasetId) ?? [])]);
      return true;
    } catch (e) {
      if (e instanceof DataVisorError && IMAGE_FAULTS.has(e.code)) return false;
      throw e;
    }
  }

  /**
   * Shutdown: thumbnails waiting for a source or decode slot fail with UNAVAILABLE when their turn
   * comes, instead of decoding for requests whose connections are being cut; decodes already
   * running finish. A burst of cold requests otherwise holds the process for its whole queue.
   */
  stop(): void {
    this.#stopped = true;
  }

  /** Resolves once every cache write begun so far has landed (or failed): for shutdown, and tests. */
  async flush(): Promise<void> {
    this.#writeDeferred(this.#takeDeferred());
    await Promise.allSettled([...this.#writes.values()].flatMap((w) => [...w]));
  }

  /**
   * Removes the cache folders of datasets not in `keep` (ThumbnailStore.sweep): call at start,
   * before any ingest makes a folder for a dataset not yet committed. Folders are gone from where
   * they were read when this returns; their deletion is the promise.
   */
  sweep(keep: ReadonlySet<string>): Promise<void> {
    return this.#store.sweep(keep, Object.keys(THUMBNAIL_WIDTHS));
  }

  async removeDataset(datasetId: string): Promise<void> {
    assertDatasetId(datasetId);
    this.#epochs.set(datasetId, this.#epoch(datasetId) + 1);
    const prefix = `${datasetId}/`;
    this.#memory.deleteByPrefix(prefix);
    // Requests already running still get their thumbnail; later ones start afresh.
    for (const id of this.#inFlight.keys()) {
      if (id.startsWith(prefix)) this.#inFlight.delete(id);
    }
    this.#takeDeferred((w) => w.datasetId === datasetId);
    await Promise.allSettled(this.#writes.get(datasetId) ?? []);
    await this.#store.removeDataset(datasetId);
  }

  #load(id: string, req: ThumbnailRequest): Promise<Thumbnail> {
    const pending = this.#inFlight.get(id);
    if (pending) return pending;
    const made = this.#readOrMake(req).finally(() => {
      if (this.#inFlight.get(id) === made) this.#inFlight.delete(id);
    });
    this.#inFlight.set(id, made);
    return made;
  }

  async #readOrMake(req: ThumbnailRequest): Promise<Thumbnail> {
    const epoch = this.#epoch(req.datasetId);
    const at = this.#locate(req);
    const stored = this.#store.read(at);
    const size = stored && readWebpSize(stored);
    let thumb: Thumbnail;
    if (stored && size) {
      this.stats.diskHits++;
      thumb = toThumbnail(stored, size.width, size.height);
    } else {
      // A missing file, or one that is not a whole WebP (a torn write after a power cut): remake it.
      // The source is found (a query, a path check, a download) before a decode slot is taken, so
      // the decode slots are only ever held by sharp; a source slot is held until the decode ends,
      // which bounds the downloaded bytes held.
      const label = `sample ${JSON.stringify(req.sampleKey)} of dataset ${JSON.stringify(req.datasetId)}`;
      const made = await this.#sourceSlots.run(async () => {
        this.#assertRunning();
        const source = await loadThumbnailSource(req.loadSource, label);
        return this.#decodeSlots.run(async () => {
          this.#assertRunning();
          this.#decoding++;
          try {
            return await renderThumbnail(source, { width: THUMBNAIL_WIDTHS[req.size], crop: req.crop, maxInputPixels: this.#maxInputPixels, label });
          } finally {
            // The last decode of a burst (even a failed one) lets the deferred writes run once idle.
            if (--this.#decoding === 0) {
              this.#lastDecodeEnd = performance.now();
              this.#scheduleDrain();
            }
          }
        });
      });
      this.stats.generated++;
      thumb = toThumbnail(made.body, made.width, made.height);
      // Answer without waiting for the disk: the bytes are in memory, and removeDataset waits for
      // pending writes. A failed write only means the next miss after eviction decodes again.
      if (epoch === this.#epoch(req.datasetId)) this.#persist({ datasetId: req.datasetId, at, body: made.body, queued: performance.now() });
    }
    if (epoch === this.#epoch(req.datasetId)) this.#memory.set(memoryKey(req), thumb);
    return thumb;
  }

  /**
   * Queues the write until the decoders have been idle for writeIdleMs (or the oldest has waited
   * MAX_WRITE_DELAY_MS), or writes now when the write-behind budget is spent.
   */
  #persist(w: DeferredWrite): void {
    if (this.#deferredBytes + w.body.length > DEFERRED_WRITE_BYTES) {
      void this.#write(w);
      return;
    }
    this.#deferred.push(w);
    this.#deferredBytes += w.body.length;
    // Busy for too long: the oldest writes go now, a few per thumbnail made.
    if (w.queued - this.#deferred[0]!.queued > MAX_WRITE_DELAY_MS) this.#writeDeferred(this.#takeDeferred(undefined, DRAIN_BATCH));
    this.#scheduleDrain();
  }

  #write(w: DeferredWrite): Promise<void> {
    return this.#track(w.datasetId, this.#store.write(w.at, w.body)).catch((err: unknown) => {
      try {
        this.#onWriteError(err);
      } catch {
        // A failing reporter must not turn a failed cache write into an unhandled rejection.
      }
    });
  }

  /**
   * Arms the idle timer. It does not keep the process alive: shutdown calls flush(). A decode that
   * runs when it fires ends with a new schedule, so the queue is never left behind.
   */
  #scheduleDrain(): void {
    if (this.#drainTimer || this.#draining || this.#deferred.length === 0 || this.#decoding > 0) return;
    const wait = Math.max(0, this.#lastDecodeEnd + this.#writeIdleMs - performance.now());
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      if (this.#decoding > 0) return;
      if (performance.now() - this.#lastDecodeEnd < this.#writeIdleMs) this.#scheduleDrain();
      else this.#drainDeferred();
    }, wait);
    this.#drainTimer.unref();
  }

  /** Writes deferred thumbnails a few at a time while no decode runs. */
  #drainDeferred(): void {
    if (this.#draining || this.#deferred.length === 0) return;
    this.#draining = true;
    void (async () => {
      try {
        while (this.#deferred.length > 0 && this.#decoding === 0) {
          await Promise.all(this.#takeDeferred(undefined, DRAIN_BATCH).map((w) => this.#write(w)));
        }
      } finally {
        this.#draining = false;
        this.#scheduleDrain();
      }
    })();
  }

  /** Starts these writes now, idle or not. */
  #writeDeferred(writes: DeferredWrite[]): void {
    for (const w of writes) void this.#write(w);
  }

  /** Takes out of the queue the deferred writes `which` selects, or the first `limit` of all. */
  #takeDeferred(which?: (w: DeferredWrite) => boolean, limit = Infinity): DeferredWrite[] {
    let taken: DeferredWrite[];
    if (which) {
      taken = this.#deferred.filter(which);
      this.#deferred = this.#deferred.filter((w) => !which(w));
    } else {
      taken = this.#deferred.splice(0, limit);
    }
    for (const w of taken) this.#deferredBytes -= w.body.length;
    return taken;
  }

  async #track(datasetId: string, write: Promise<void>): Promise<void> {
    let writes = this.#writes.get(datasetId);
    if (!writes) this.#writes.set(datasetId, (writes = new Set()));
    writes.add(write);
    try {
      await write;
    } finally {
      writes.delete(write);
      if (writes.size === 0 && this.#writes.get(datasetId) === writes) this.#writes.delete(datasetId);
    }
  }

  #assertRunning(): void {
    if (this.#stopped) throw new DataVisorError('UNAVAILABLE', 'The server is shutting down: no more thumbnails are made');
  }

  #locate(req: ThumbnailRequest) {
    const hash = createHash('sha256')
      .update(JSON.stringify(req.crop ? [RENDER_VERSION, req.size, req.sampleKey, cropKey(req.crop)] : [RENDER_VERSION, req.size, req.sampleKey]))
      .digest('hex');
    return this.#store.locate(req.datasetId, req.size, hash);
  }

  #epoch(datasetId: string): number {
    return this.#epochs.get(datasetId) ?? 0;
  }
}

/**
 * Key of the memory cache and of in-flight work. The dataset id cannot contain "/", so the
 * `<datasetId>/` prefix selects exactly one dataset's entries. Validating here also keeps a hostile
 * id or size from ever reaching a file path.
 */
function memoryKey(req: ThumbnailRequest): string {
  assertDatasetId(req.datasetId);
  if (!Object.hasOwn(THUMBNAIL_WIDTHS, req.size)) {
    throw new BadInputError(`Thumbnail size ${JSON.stringify(req.size)} is not one of small, medium, large`);
  }
  return `${req.datasetId}/${req.size}/${req.sampleKey}${req.crop ? `/${cropKey(req.crop)}` : ''}`;
}

/** What makes a crop's bytes: the box and the padding (not the fault code, which changes no pixel). */
const cropKey = (c: CropSpec) => `crop:${c.box.x},${c.box.y},${c.box.w},${c.box.h}:${c.pad}`;

function toThumbnail(body: Buffer, width: number, height: number): Thumbnail {
  // Strong ETag from the bytes, computed once here rather than on every request.
  const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
  return { body, etag, contentType: 'image/webp', width, height };
}
