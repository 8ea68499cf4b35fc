import { Worker } from 'node:worker_threads';
import { DataVisorError, type ErrorCode } from '../../../errors.js';
import { buffersOf, type ColumnBuffers } from '../../../records/columns.js';
import type { ParseEvent, WorkerRequest, WorkerResponse } from './wire.js';
import { requireSections } from './coco-reader.js';

/**
 * Chunks forwarded to a thread whose answers the consumer has not taken yet: enough to keep the
 * thread busy, few enough to bound memory whatever the consumer's speed. Counting only unanswered
 * chunks let the answers of a part the consumer did not get to pile up while it read another: a
 * file split in two, read by a consumer slowed to 20 ms a step, had 94 of its 175 blocks read
 * ahead (tests/ingest/parse-backpressure.test.ts).
 */
const IN_FLIGHT = 4;
/** Puts a later part's tokenizer inside the annotations array, where its bytes begin. */
const PART_PREFIX = '{"annotations":[';
/** Bytes searched after an even split point for the end of one annotation and the start of the next. */
const CUT_WINDOW = 256 * 1024;

/** Bytes `start` (inclusive) to `end` (exclusive). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ParseInput {
  /** The file's size; null when unknown (then it is read in one part). */
  size: number | null;
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

export interface ParseOptions {
  keepShapes?: boolean;
  /** Threads a large file is split across (1: none). */
  threads?: number;
  /** The smallest part worth a thread of its own. */
  minPartBytes?: number;
}

export interface ParseProgress {
  bytesRead: number;
  /** Their batches' arrays are refilled once the next step is asked for: use them before. */
  events: ParseEvent[];
}

export interface ParseSummary {
  bytesRead: number;
  nonStandardNumbers: number;
  /** Parts the file was read in: 1 when it was not split or its split did not hold. */
  parts: number;
}

/**
 * Parses a COCO file in worker threads and yields its records in batches, in file order.
 *
 * Tokenizing is the cost of an ingest and runs on one core per thread, so a large file is split
 * (docs/ingestion.md): the bytes after even split points are searched for `}` `,` `{`, which is
 * where one annotation ends and the next begins in every COCO file that holds most of its bytes
 * in annotations. Each later part starts a tokenizer inside the annotations array; its annotations
 * stream out tagged with their part (their positions in the file are known only once the parts
 * before are read). The split is a guess that the parts check:
 *  - a part before another must end exactly after an element of the annotations array: its last
 *    `}` is tokenized alone and must close an annotation (a `}` in a string closes nothing);
 *  - a middle part must hold nothing but annotations; the last part's later sections wait until
 *    every earlier part has checked out, and none may repeat a section an earlier part had.
 * Any miss, or any error in a later part, drops the later parts (`parts_dropped`) and the first
 * part reads on to the end alone, so a file that is not what the guess assumed is read exactly as
 * without a split: the same rows and the same errors (a malformed-JSON byte range may be cut at
 * other block edges, since the read resumes at the checkpoint).
 *
 * Memory stays bounded: at most IN_FLIGHT chunks per thread are read and not yet handed to the
 * consumer, however slow it is, and a part whose records must wait is simply not fed. Returning early (a consumer's `return()`, or a
 * throw) terminates the threads and closes the file.
 */
export async function* parseCoco(input: ParseInput, options: ParseOptions = {}): AsyncGenerator<ParseProgress, ParseSummary> {
  const cuts = await findCuts(input, options);
  const keepShapes = options.keepShapes === true;
  const wake = new Wakeup();
  // Enough for every thread's blocks in flight and those on their way back.
  const spare = new SpareBlocks(2 * IN_FLIGHT * (cuts.length + 1));
  const head = new Part(0, keepShapes, null, wake, spare);
  const parts = [head, ...cuts.map((_, i) => new Part(i + 1, keepShapes, PART_PREFIX, wake, spare))];
  const last = parts[parts.length - 1]!;
  try {
    if (cuts.length === 0) {
      head.plan(await input.open(undefined, spare), 'end');
    } else {
      head.plan(await input.open({ start: 0, end: cuts[0]!.end }, spare), 'checkpoint');
      for (let k = 1; k < parts.length; k++) {
        const end = k < cuts.length ? cuts[k]!.end : input.size!;
        parts[k]!.plan(await input.open({ start: cuts[k - 1]!.next, end }, spare), k < cuts.length ? 'checkpoint' : 'end');
      }
    }

    /** The consumer is done with `events`: their batches' arrays go back to the threads that filled them. */
    const handBack = (events: ParseEvent[]) => {
      const back = new Map<Part, { kind: 'images' | 'annotations'; buffers: ColumnBuffers }[]>();
      for (const ev of events) {
        if (ev.kind !== 'images' && ev.kind !== 'annotations') continue;
        const from = parts[ev.kind === 'annotations' ? (ev.part ?? 0) : 0]!;
        if (!back.has(from)) back.set(from, []);
        back.get(from)!.push({ kind: ev.kind, buffers: buffersOf(ev.columns) });
      }
      for (const [part, batches] of back) part.recycle(batches);
    };

    let speculating = cuts.length > 0;
    /** What the parts before the last report at their checkpoints, by part. */
    const checked = new Map<number, { sections: string[]; nonStandardNumbers: number }>();
    /** Every part before the last has checked out: the last part's other sections may pass. */
    const released = () => checked.size === parts.length - 1;
    /** The last part's answer being read, and its next event: it may have to wait mid-answer. */
    let lastAnswer: WorkerResponse | null = null;
    let lastNext = 0;

    const bytesRead = () => (speculating ? parts.reduce((n, p) => n + p.bytesRead, 0) : head.bytesRead);
    const readRest = async () => head.plan(await input.open({ start: cuts[0]!.end, end: input.size! }, spare), 'end');
    const dropParts = async (out: ParseEvent[]) => {
      speculating = false;
      await Promise.all(parts.slice(1).map((p) => p.close()));
      out.push({ kind: 'parts_dropped' });
      // Else its checkpoint is still to come, and the first part reads on from there.
      if (checked.has(0)) await readRest();
    };

    /**
     * Hands on the last part's current answer from `lastNext`: annotations at once, anything else
     * once released. 'wait': not released yet; 'next': answer read; 'done': the file is read;
     * 'miss': the split does not hold.
     */
    const readLast = (out: ParseEvent[]): 'wait' | 'next' | 'done' | 'miss' => {
      const m = lastAnswer!;
      if (m.type === 'error' || m.type === 'checkpoint') return 'miss';
      const earlier = checked.get(0)?.sections ?? [];
      for (; lastNext < m.events.length; lastNext++) {
        const ev = m.events[lastNext]!;
        if (ev.kind === 'annotations') out.push({ ...ev, part: last.index });
        // The prefix's own section event; a real second "annotations" key is the reader's error.
        else if (ev.kind === 'section' && ev.name === 'annotations') continue;
        else if (!released()) return 'wait';
        else if (ev.kind === 'section' && earlier.includes(ev.name)) return 'miss';
        else out.push(ev);
      }
      if (m.type === 'done') return released() ? 'done' : 'wait';
      lastAnswer = null;
      return 'next';
    };

    for (;;) {
      const out: ParseEvent[] = [];
      if (!speculating) {
        const m = await head.next();
        if (m.type === 'error') throw new DataVisorError(m.code as ErrorCode, m.message);
        out.push(...m.events);
        if (m.type === 'done') {
          if (out.length > 0) yield { bytesRead: m.bytesRead, events: out };
          return { bytesRead: m.bytesRead, nonStandardNumbers: m.nonStandardNumbers, parts: 1 };
        }
        // A checkpoint left over from a split dropped while the first part was still reading.
        if (m.type === 'checkpoint') await readRest();
        yield { bytesRead: bytesRead(), events: out };
        handBack(out);
        continue;
      }

      const lastWaits = lastAnswer !== null;
      const from = await wake.any(lastWaits ? parts.slice(0, -1) : parts);
      let state: 'wait' | 'next' | 'done' | 'miss' = 'next';
      if (from === last) {
        lastAnswer = last.answer();
        lastNext = 0;
        state = readLast(out);
      } else {
        const m = from.answer();
        if (m.type === 'error' && from === head) throw new DataVisorError(m.code as ErrorCode, m.message);
        if (m.type === 'error' || m.type === 'done') state = 'miss';
        else {
          for (const ev of m.events) {
            if (from === head) out.push(ev);
            else if (ev.kind === 'annotations') out.push({ ...ev, part: from.index });
            else if (!(ev.kind === 'section' && ev.name === 'annotations')) state = 'miss';
          }
          if (m.type === 'checkpoint') {
            checked.set(from.index, { sections: m.sections, nonStandardNumbers: m.nonStandardNumbers });
            if (!m.ok) state = 'miss';
          }
        }
        // The last checkpoint releases a waiting last part.
        if (state !== 'miss' && lastWaits && released()) state = readLast(out);
      }
      if (state === 'miss') {
        await dropParts(out);
      } else if (state === 'done') {
        const done = lastAnswer as Extract<WorkerResponse, { type: 'done' }>;
        const counted = [...checked.values()];
        requireSections(new Set(counted.flatMap((c) => c.sections).concat(done.sections)));
        if (out.length > 0) yield { bytesRead: input.size!, events: out };
        const nonStandardNumbers = counted.reduce((n, c) => n + c.nonStandardNumbers, done.nonStandardNumbers);
        return { bytesRead: input.size!, nonStandardNumbers, parts: parts.length };
      }
      yield { bytesRead: bytesRead(), events: out };
      handBack(out);
    }
  } finally {
    await Promise.all(parts.map((p) => p.close()));
  }
}

/** Wakes the generator when any thread answers. */
class Wakeup {
  private resolve: (() => void) | null = null;

  notify(): void {
    this.resolve?.();
    this.resolve = null;
  }

  /** The first of `parts` with an answer waiting (a failed thread counts), in their order. */
  async any(parts: Part[]): Promise<Part> {
    for (;;) {
      await Promise.all(parts.map((p) => p.fill()));
      const ready = parts.find((p) => p.ready);
      if (ready) return ready;
      await new Promise<void>((r) => (this.resolve = r));
    }
  }
}

/** One worker thread and the byte ranges it is fed. */
class Part {
  private readonly worker: Worker;
  private readonly inbox: WorkerResponse[] = [];
  private failure: Error | null = null;
  private source: AsyncIterator<Uint8Array> | null = null;
  private then: 'checkpoint' | 'end' = 'end';
  private inFlight = 0;
  private closed = false;
  bytesRead = 0;

  constructor(
    readonly index: number,
    keepShapes: boolean,
    prefix: string | null,
    private readonly wake: Wakeup,
    spare: SpareBlocks,
  ) {
    // The tokens are short-lived garbage: a young generation of 16 MB collects them as fast as the
    // default one does and keeps each thread's heap ~15 MB smaller.
    this.worker = new Worker(new URL('./parse-worker.js', import.meta.url), {
      workerData: { keepShapes, prefix },
      resourceLimits: { maxYoungGenerationSizeMb: 16 },
    });
    this.worker.on('message', (m: WorkerResponse) => {
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
      this.failure ??= new DataVisorError('INTERNAL', `the COCO parser thread stopped unexpectedly (exit code ${code})`);
      wake.notify();
    });
  }

  get ready(): boolean {
    return this.inbox.length > 0 || this.failure !== null;
  }

  /** Feeds `source` next, then a checkpoint or the end of the text. */
  plan(source: AsyncIterable<Uint8Array>, then: 'checkpoint' | 'end'): void {
    this.source = source[Symbol.asyncIterator]();
    this.then = then;
    this.wake.notify();
  }

  /** Forwards chunks until IN_FLIGHT are not taken by the consumer yet, or the source is spent. */
  async fill(): Promise<void> {
    while (this.source && this.inFlight < IN_FLIGHT) {
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
  answer(): WorkerResponse {
    const m = this.inbox.shift();
    if (m?.type === 'batch') this.inFlight--;
    if (m) return m;
    const e = this.failure;
    const code = e instanceof DataVisorError ? e.code : 'INGEST_FAILED';
    return { type: 'error', code, message: e ? e.message : 'the COCO parser thread has no answer' };
  }

  async next(): Promise<WorkerResponse> {
    await this.wake.any([this]);
    return this.answer();
  }

  recycle(batches: { kind: 'images' | 'annotations'; buffers: ColumnBuffers }[]): void {
    if (this.closed) return;
    const buffers = batches.flatMap((b) => [b.buffers.nums, ...b.buffers.ends, ...b.buffers.nulls].map((a) => a.buffer as ArrayBuffer));
    this.worker.postMessage({ type: 'recycle', batches } satisfies WorkerRequest, buffers);
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
  private post(m: WorkerRequest): void {
    if (m.type !== 'chunk') return this.worker.postMessage(m);
    const own = m.data.byteOffset === 0 && m.data.byteLength === m.data.buffer.byteLength;
    const data = own ? m.data : new Uint8Array(m.data);
    this.worker.postMessage({ type: 'chunk', data }, [data.buffer as ArrayBuffer]);
  }
}

/**
 * Where to split the file: for each later part, the end of an annotation (`}`) and the start of
 * the next (`{`) after an even split point. None when the file is small or its size unknown.
 */
async function findCuts(input: ParseInput, options: ParseOptions): Promise<{ end: number; next: number }[]> {
  const size = input.size;
  const threads = Math.max(1, options.threads ?? 1);
  if (size === null || threads === 1) return [];
  const count = Math.min(threads, Math.floor(size / Math.max(1, options.minPartBytes ?? Number.MAX_SAFE_INTEGER)));
  const cuts: { end: number; next: number }[] = [];
  for (let k = 1; k < count; k++) {
    const from = Math.max(Math.floor((size * k) / count), cuts.at(-1)?.next ?? 0);
    const window: Buffer[] = [];
    for await (const chunk of await input.open({ start: from, end: Math.min(size, from + CUT_WINDOW) })) window.push(Buffer.from(chunk));
    const cut = annotationBoundary(Buffer.concat(window));
    if (cut) cuts.push({ end: from + cut.end, next: from + cut.next });
  }
  return cuts;
}

/** The first `}` `,` `{` (JSON whitespace allowed between) in `bytes`: the index after `}` and the index of `{`. */
function annotationBoundary(bytes: Buffer): { end: number; next: number } | null {
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
