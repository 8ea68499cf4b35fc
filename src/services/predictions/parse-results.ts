import { DataVisorError, type ErrorCode } from '../errors.js';
import { findCuts, Part as ThreadPart, SpareBlocks, Wakeup, type ParseInput } from '../common/parse-parts.js';
import { buffersOf, type Columns } from '../records/columns.js';
import type { PartSummary, RecycledBatch, ResultsResponse, ResultsThreadOptions } from './results-wire.js';

/** Bytes looked at for the file's first character. */
const HEAD_BYTES = 1024;
/** A split file's ranges: small enough that the few parsed ahead of the consumer stay small (~5 MB of rows each). */
const RANGE_BYTES = 4 * 1024 * 1024;
const EXAMPLES = 5;
/**
 * Chunks (256 KiB) of a bucket's file a thread is sent ahead of its answers: a whole range. The
 * import's appends keep the main thread from forwarding for ~0.1 s at a time, and with the
 * parse-parts default of 4 the threads ran dry and idled for half of an import.
 */
const IN_FLIGHT = 16;

export interface ResultsStep {
  bytesRead: number;
  /** Detections in file order, each batch following the last. Their arrays are refilled once the next step is asked for: use them before. */
  batches: Columns[];
  /** The split did not hold at this step's position: the rest of the file is read in one part (nothing yielded before is void). */
  resumed: boolean;
}

export interface ResultsSummary {
  bytesRead: number;
  count: number;
  /** Detections whose bbox held NaN / Infinity (kept without a box), with the first positions in the file. */
  nonFiniteBoxes: { count: number; examples: number[] };
  /** Whether the file's first detection had a non-empty bbox: pycocotools then takes every detection's area from its box. */
  firstHasBbox: boolean | null;
}

interface Range {
  start: number;
  end: number;
  then: 'checkpoint' | 'end';
}

/** A range being read or read: its batches wait until every range before it is handed on. */
interface RangeRead {
  thread: Part;
  batches: Columns[];
  /** Set once the range is read to its end (ok) or failed. */
  summary: PartSummary | null;
  ok: boolean;
}

/**
 * Parses a COCO results file in worker threads (results-worker.ts, the ResultsParser) and yields
 * its detections in column batches, in file order (docs/evaluation.md, "Import"). A results array
 * over twice the smallest part worth a thread is cut after even points at `}` `,` `{` into ranges
 * of ~4 MB, which the threads read round robin, each range with a tokenizer of its own started
 * inside the array; a range's detections are handed on once every range before it has been. So
 * the consumer gets the file's order while every thread parses, and at most one range per thread
 * is read ahead of the next one it gets (memory bounded whatever the file's size).
 *
 * The cuts are guesses the ranges check, in file order: a range before the last must end right
 * after an element of the array (its last `}` tokenized alone must close a result), and its first
 * detection must follow pycocotools' area rule as the file's first does (with a box or without).
 * Every range before the first miss read the file as one tokenizer would (each started where the
 * previous one provably ended), so at the first miss, or the first error, the rest of the file is
 * read from that range's start by one thread that knows the detections before it and the file's
 * rule: the rows and the errors, with their positions, are those of an unsplit read. A COCO
 * dataset file (its `annotations` read as results) is read in one part.
 *
 * Returning early (a consumer's `return()`, or a throw) terminates the threads and closes the file.
 */
export async function* parseResults(input: ParseInput, options: { threads?: number; minPartBytes?: number } = {}): AsyncGenerator<ResultsStep, ResultsSummary> {
  const size = input.size;
  const minPart = options.minPartBytes ?? Number.MAX_SAFE_INTEGER;
  const rangeBytes = Math.min(RANGE_BYTES, minPart);
  const split = (options.threads ?? 1) > 1 && size !== null && size >= 2 * minPart && (await startsWithArray(input));
  const cuts = split ? await findCuts(input, { threads: Math.ceil(size / rangeBytes), minPartBytes: rangeBytes }) : [];
  const ranges: Range[] = [];
  for (let i = 0; i <= cuts.length; i++) {
    ranges.push({ start: i === 0 ? 0 : cuts[i - 1]!.next, end: i < cuts.length ? cuts[i]!.end : (size ?? Number.MAX_SAFE_INTEGER), then: i < cuts.length ? 'checkpoint' : 'end' });
  }
  const threadCount = Math.min(options.threads ?? 1, ranges.length);
  const wake = new Wakeup();
  const spare = new SpareBlocks(2 * IN_FLIGHT * threadCount);
  const threads: Part[] = [];
  const reads: RangeRead[] = [];
  /** Per thread, the range it reads now (null: none; a failed thread reads none again). */
  const reading: (number | null)[] = [];
  /** Per thread, the last range it was given. */
  const given: number[] = [];
  const failed = new Set<number>();
  let count = 0;
  let firstHasBbox: boolean | null = null;
  const nonFinite = { count: 0, examples: [] as number[] };
  const add = (s: PartSummary) => {
    for (const e of s.nonFiniteExamples) if (nonFinite.examples.length < EXAMPLES) nonFinite.examples.push(count + e);
    nonFinite.count += s.nonFinite;
    count += s.count;
  };
  const open = (r: Range) => (size === null ? input.open(undefined, spare) : input.open({ start: r.start, end: r.end }, spare));
  /** A range for `thread`: read by the thread itself from a local file, else forwarded chunk by chunk. */
  const plan = async (thread: Part, r: Range, fresh: boolean) => {
    if (input.localPath !== undefined && size !== null) thread.planFile(input.localPath, r, r.then, fresh);
    else thread.plan(await open(r), r.then, fresh);
  };

  try {
    if (ranges.length > 1) {
      for (let t = 0; t < threadCount; t++) threads.push(new Part({ prefix: t === 0 ? null : RANGE_PREFIX }, wake, spare));
      /** The next range a thread may start: its own, round robin, at most one per thread ahead of the next one handed on. */
      const schedule = async (next: number) => {
        for (let t = 0; t < threadCount; t++) {
          if (reading[t] != null || failed.has(t)) continue;
          const last = given[t];
          const r = last === undefined ? t : last + threadCount;
          if (r >= ranges.length || r > next + threadCount) continue;
          reading[t] = given[t] = r;
          reads[r] = { thread: threads[t]!, batches: [], summary: null, ok: false };
          await plan(threads[t]!, ranges[r]!, last !== undefined);
        }
      };
      let next = 0;
      await schedule(next);
      for (;;) {
        const done = reads[next];
        if (done?.summary) {
          const rule = done.summary.firstHasBbox;
          if (!done.ok || (next > 0 && rule !== null && rule !== firstHasBbox)) break;
          if (next === 0) firstHasBbox = rule;
          add(done.summary);
          next++;
          // The threads' next chunks are read while the consumer works on this range (a failed read
          // is answered when the loop waits for them).
          for (const t of threads) t.fill().catch(() => undefined);
          if (done.batches.length > 0) yield { bytesRead: ranges[next - 1]!.end, batches: done.batches, resumed: false };
          done.thread.recycle(done.batches.map((b) => ({ buffers: buffersOf(b) })));
          if (next === ranges.length) return { bytesRead: size!, count, nonFiniteBoxes: nonFinite, firstHasBbox };
          await schedule(next);
          continue;
        }
        const t = threads.indexOf(await wake.any(threads.filter((_, i) => reading[i] != null)));
        const thread = threads[t]!;
        const read = reads[reading[t]!]!;
        const m = thread.answer();
        if (m.type === 'error') {
          // A thread that failed reads nothing more: the file is read again from this range at the latest.
          read.summary = { count: 0, nonFinite: 0, nonFiniteExamples: [], firstHasBbox: null };
          reading[t] = null;
          failed.add(t);
          continue;
        }
        if (m.columns) read.batches.push(m.columns);
        if (m.type !== 'batch') {
          read.summary = m.summary;
          read.ok = m.type === 'checkpoint' ? m.ok && ranges[reading[t]!]!.then === 'checkpoint' : ranges[reading[t]!]!.then === 'end';
          reading[t] = null;
          await schedule(next);
        }
      }
      // The first range that missed: every range before it is handed on, and the file is read on from its start alone.
      await Promise.all(threads.splice(0).map((p) => p.close()));
      const from = ranges[next]!;
      threads.push(new Part({ prefix: next === 0 ? null : RANGE_PREFIX, resume: { count, firstHasBbox } }, wake, spare));
      await plan(threads[0]!, { ...from, end: size!, then: 'end' }, false);
      yield* readOn(threads[0]!, from.start, true);
    } else {
      threads.push(new Part({ prefix: null }, wake, spare));
      await plan(threads[0]!, ranges[0]!, false);
      yield* readOn(threads[0]!, 0, false);
    }
    return { bytesRead: size ?? threads[0]!.bytesRead, count, nonFiniteBoxes: nonFinite, firstHasBbox };
  } finally {
    await Promise.all(threads.map((p) => p.close()));
  }

  /** One thread reads to the end of the file from `offset`, each batch handed on as it comes. */
  async function* readOn(thread: Part, offset: number, resumed: boolean): AsyncGenerator<ResultsStep, void> {
    let first = resumed;
    for (;;) {
      const m = await thread.next();
      if (m.type === 'error') throw new DataVisorError(m.code as ErrorCode, m.message);
      const batches = m.columns ? [m.columns] : [];
      if (m.type === 'done') {
        firstHasBbox ??= m.summary.firstHasBbox;
        if (batches.length > 0 || first) yield { bytesRead: offset + m.bytesRead, batches, resumed: first };
        add(m.summary);
        return;
      }
      yield { bytesRead: offset + m.bytesRead, batches, resumed: first };
      first = false;
      thread.recycle(batches.map((b) => ({ buffers: buffersOf(b) })));
    }
  }
}

/** Puts a later range's tokenizer inside the results array, where its bytes begin. */
const RANGE_PREFIX = '[';

/** Whether the file's first character (after a BOM and whitespace) opens an array: a results file, not a dataset file. */
async function startsWithArray(input: ParseInput): Promise<boolean> {
  if (input.size === null) return false;
  const bytes: Buffer[] = [];
  for await (const chunk of await input.open({ start: 0, end: Math.min(input.size, HEAD_BYTES) })) bytes.push(Buffer.from(chunk));
  const text = Buffer.concat(bytes).toString('utf8').replace(/^\uFEFF/, '');
  return /^\s*\[/.test(text);
}

/** A thread of results-worker.ts. */
class Part extends ThreadPart<ResultsResponse, RecycledBatch> {
  constructor(options: ResultsThreadOptions, wake: Wakeup, spare: SpareBlocks) {
    super(0, new URL('./results-worker.js', import.meta.url), options, 'results parser', wake, spare, IN_FLIGHT);
  }
}

