import { Worker } from 'node:worker_threads';
import { DataVisorError } from '../errors.js';
import type { ColumnBuffers } from '../records/columns.js';

/**
 * The parts of a JSON file parsed in parallel worker threads (the COCO parser, parse-coco.ts, and
 * the results parser, predictions/parse-results.ts): where to cut the file, one thread per part,
 * its flow control, and the read buffers the threads hand back.
 */

/**
 * Chunks forwarded to a thread whose answers the consumer has not taken yet: enough to keep the
 * thread busy, few enough to bound memory whatever the consumer's speed. Counting only unanswered
 * chunks let the answers of a part the consumer did not get to pile up while it read another: a
 * file split in two, read by a consumer slowed to 20 ms a step, had 94 of its 175 blocks read
 * ahead (tests/ingest/parse-backpressure.test.ts).
 */
export const IN_FLIGHT = 4;
/** Bytes searched after an even split point for the end of one element and the start of the next. */
const CUT_WINDOW = 256 * 1024;

/** Bytes `start` (inclusive) to `end` (exclusive). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ParseInput {
  /** The file's size; null when unknown (then it is read in one part). */
  size: number | null;
  /** A local file's path, for threads that read their ranges themselves (results-worker.ts). */
  localPath?: string;
  /** The file, or one range of it, in blocks; read into buffers from `spare` where the source can. */
  open(range?: ByteRange, spare?: SpareBlocks): Promise<AsyncIterable<Uint8Array>>;
}

/** Smaller blocks (a range's last) are not worth keeping: reading into them would cut the file small. */
const MIN_SPARE_BYTES = 64 * 1024;

/**
 * Buffers of blocks the threads have read, handed back to be read into again. Kept only once a
 * source has asked for one: a download (S3, GCS) makes its own blocks, and would only fill it.
 */
export class SpareBlocks {
  private readonly free: Uint8Array[] = [];
  private wanted = false;

  constructor(private readonly max: number) {}

  take(): Uint8Array | undefined {
    this.wanted = true;
    return this.free.pop();
  }

  give(block: Uint8Array): void {
    if (this.wanted && block.byteLength >= MIN_SPARE_BYTES && this.free.length < this.max) this.free.push(block);
  }
}

/** What a part's thread is sent: the chunks of its range, then a checkpoint or the end; arrays handed back. */
export type PartRequest<Batch> =
  /** What follows is another range of the file, which starts inside the array the thread reads. */
  | { type: 'fresh' }
  /** Bytes `start`…`end` of a local file, which the thread reads itself, then a checkpoint or the end. */
  | { type: 'file'; path: string; start: number; end: number; then: 'checkpoint' | 'end' }
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'checkpoint' }
  | { type: 'end' }
  /** Arrays of batches the main thread is done with, for the thread to build its next batches in. */
  | { type: 'recycle'; batches: Batch[] };

/**
 * What a part's thread answers: one `batch` per forwarded chunk (`block`: the chunk, read to its
 * end and handed back to be read into again), then a `checkpoint` or `done`, or an `error`.
 */
export type PartResponse = { type: 'batch' | 'checkpoint' | 'done'; bytesRead: number; block?: ArrayBuffer } | { type: 'error'; code: string; message: string };

/** Wakes the consumer when any thread answers. */
export class Wakeup {
  private resolve: (() => void) | null = null;

  notify(): void {
    this.resolve?.();
    this.resolve = null;
  }

  /** The first of `parts` with an answer waiting (a failed thread counts), in their order. */
  async any<P extends { fill(): Promise<void>; readonly ready: boolean }>(parts: P[]): Promise<P> {
    for (;;) {
      await Promise.all(parts.map((p) => p.fill()));
      const ready = parts.find((p) => p.ready);
      if (ready) return ready;
      await new Promise<void>((r) => (this.resolve = r));
    }
  }
}

/** One worker thread and the byte ranges it is fed. */
export class Part<R extends PartResponse, Batch extends { buffers: ColumnBuffers }> {
  private readonly worker: Worker;
  private readonly inbox: R[] = [];
  private failure: Error | null = null;
  private source: AsyncIterator<Uint8Array> | null = null;
  private then: 'checkpoint' | 'end' = 'end';
  private inFlight = 0;
  private filling: Promise<void> | null = null;
  private closed = false;
  bytesRead = 0;

  constructor(
    readonly index: number,
    script: URL,
    workerData: unknown,
    /** Names the thread in the error of its unexpected exit. */
    private readonly what: string,
    private readonly wake: Wakeup,
    spare: SpareBlocks,
    /** Chunks forwarded and not answered at most (more for a consumer that blocks for long, as an import's appends do). */
    private readonly maxInFlight = IN_FLIGHT,
  ) {
    // The tokens are short-lived garbage: a young generation of 16 MB collects them as fast as the
    // default one does and keeps each thread's heap ~15 MB smaller.
    this.worker = new Worker(script, { workerData, resourceLimits: { maxYoungGenerationSizeMb: 16 } });
    this.worker.on('message', (m: R) => {
      if (m.type === 'batch' && m.block) spare.give(new Uint8Array(m.block));
      if (m.type !== 'error') this.bytesRead = m.bytesRead;
      this.inbox.push(m);
      wake.notify();
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      wake.notify();
    });
    this.worker.on('exit', (code) => {
      this.failure ??= new DataVisorError('INTERNAL', `the ${what} thread stopped unexpectedly (exit code ${code})`);
      wake.notify();
    });
  }

  get ready(): boolean {
    return this.inbox.length > 0 || this.failure !== null;
  }

  /**
   * Feeds `source` next, then a checkpoint or the end of the text. `fresh`: the source is another
   * range of the file, read by a new tokenizer of the thread (its previous range checkpointed).
   */
  plan(source: AsyncIterable<Uint8Array>, then: 'checkpoint' | 'end', fresh = false): void {
    if (fresh) this.post({ type: 'fresh' });
    this.source = source[Symbol.asyncIterator]();
    this.then = then;
    this.wake.notify();
  }

  /**
   * Has the thread read bytes `range` of the local file `path` itself (no chunk crosses the main
   * thread, whose event loop an import's appends keep busy), then a checkpoint or the end.
   */
  planFile(path: string, range: ByteRange, then: 'checkpoint' | 'end', fresh = false): void {
    if (fresh) this.post({ type: 'fresh' });
    this.post({ type: 'file', path, start: range.start, end: range.end, then });
  }

  /**
   * Forwards chunks until `maxInFlight` are not taken by the consumer yet, or the source is spent.
   * Calls while one runs share it (so the limit holds).
   */
  fill(): Promise<void> {
    this.filling ??= this.forward().finally(() => (this.filling = null));
    return this.filling;
  }

  private async forward(): Promise<void> {
    while (this.source && this.inFlight < this.maxInFlight) {
      const r = await this.source.next();
      if (r.done) {
        this.source = null;
        this.post({ type: this.then });
      } else if (r.value.byteLength > 0) {
        this.post({ type: 'chunk', data: r.value });
        this.inFlight++;
      }
    }
  }

  /** The oldest answer, or the thread's failure as an error answer. */
  answer(): R | Extract<PartResponse, { type: 'error' }> {
    const m = this.inbox.shift();
    // A batch of a chunk that was forwarded hands its block back; one the thread read itself has none.
    if (m?.type === 'batch' && m.block) this.inFlight--;
    if (m) return m;
    const e = this.failure;
    const code = e instanceof DataVisorError ? e.code : 'INGEST_FAILED';
    return { type: 'error', code, message: e ? e.message : `the ${this.what} thread has no answer` };
  }

  async next(): Promise<R | Extract<PartResponse, { type: 'error' }>> {
    await this.wake.any([this]);
    return this.answer();
  }

  recycle(batches: Batch[]): void {
    if (this.closed) return;
    const buffers = batches.flatMap((b) => [b.buffers.nums, ...b.buffers.ends, ...b.buffers.nulls].map((a) => a.buffer as ArrayBuffer));
    this.worker.postMessage({ type: 'recycle', batches } satisfies PartRequest<Batch>, buffers);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
    await this.source?.return?.();
    this.source = null;
  }

  // A file read allocates a buffer of its own per chunk, which is transferred as it is. A chunk
  // that is a view into a larger buffer (Node's small-Buffer pool, a regrouped download) is
  // copied into one of its own first: cloning would copy the whole buffer, transferring would
  // take it from its other users.
  private post(m: PartRequest<Batch>): void {
    if (m.type !== 'chunk') return this.worker.postMessage(m);
    const own = m.data.byteOffset === 0 && m.data.byteLength === m.data.buffer.byteLength;
    const data = own ? m.data : new Uint8Array(m.data);
    this.worker.postMessage({ type: 'chunk', data }, [data.buffer as ArrayBuffer]);
  }
}

/**
 * Opens each part's byte range of the file and hands it to its thread: with no cuts, the whole
 * file to the first part; otherwise each part reads to its cut and stops at a checkpoint, the last
 * to the end of the file.
 */
export async function planParts(
  parts: readonly { plan(source: AsyncIterable<Uint8Array>, then: 'checkpoint' | 'end'): void }[],
  cuts: readonly { end: number; next: number }[],
  input: ParseInput,
  spare: SpareBlocks,
): Promise<void> {
  if (cuts.length === 0) {
    parts[0]!.plan(await input.open(undefined, spare), 'end');
    return;
  }
  parts[0]!.plan(await input.open({ start: 0, end: cuts[0]!.end }, spare), 'checkpoint');
  for (let k = 1; k < parts.length; k++) {
    const end = k < cuts.length ? cuts[k]!.end : input.size!;
    parts[k]!.plan(await input.open({ start: cuts[k - 1]!.next, end }, spare), k < cuts.length ? 'checkpoint' : 'end');
  }
}

/**
 * Where to split the file: for each later part, the end of an array element (`}`) and the start of
 * the next (`{`) after an even split point. None when the file is small or its size unknown.
 */
export async function findCuts(input: ParseInput, options: { threads?: number; minPartBytes?: number }): Promise<{ end: number; next: number }[]> {
  const size = input.size;
  const threads = Math.max(1, options.threads ?? 1);
  if (size === null || threads === 1) return [];
  const count = Math.min(threads, Math.floor(size / Math.max(1, options.minPartBytes ?? Number.MAX_SAFE_INTEGER)));
  const cuts: { end: number; next: number }[] = [];
  for (let k = 1; k < count; k++) {
    const from = Math.max(Math.floor((size * k) / count), cuts.at(-1)?.next ?? 0);
    const window: Buffer[] = [];
    for await (const chunk of await input.open({ start: from, end: Math.min(size, from + CUT_WINDOW) })) window.push(Buffer.from(chunk));
    const cut = elementBoundary(Buffer.concat(window));
    if (cut) cuts.push({ end: from + cut.end, next: from + cut.next });
  }
  return cuts;
}

/** The first `}` `,` `{` (JSON whitespace allowed between) in `bytes`: the index after `}` and the index of `{`. */
function elementBoundary(bytes: Buffer): { end: number; next: number } | null {
  const skipSpace = (i: number) => {
    while (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09) i++;
    return i;
  };
  for (let i = bytes.indexOf(0x7d); i !== -1; i = bytes.indexOf(0x7d, i + 1)) {
    const comma = skipSpace(i + 1);
    if (bytes[comma] !== 0x2c) continue;
    const next = skipSpace(comma + 1);
    if (bytes[next] === 0x7b) return { end: i + 1, next };
  }
  return null;
}
