import { DataVisorError, type ErrorCode } from '../../../errors.js';
import { buffersOf } from '../../../records/columns.js';
import { findCuts, IN_FLIGHT, Part as ThreadPart, planParts, SpareBlocks, Wakeup, type ParseInput } from '../../../common/parse-parts.js';
import type { ParseEvent, RecycledBatch, WorkerResponse } from './wire.js';
import { requireSections } from './coco-reader.js';

/** Puts a later part's tokenizer inside the annotations array, where its bytes begin. */
const PART_PREFIX = '{"annotations":[';

export type { ByteRange, ParseInput } from '../../../common/parse-parts.js';

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
  const head = new Part(0, { keepShapes, prefix: null }, wake, spare);
  const parts = [head, ...cuts.map((_, i) => new Part(i + 1, { keepShapes, prefix: PART_PREFIX }, wake, spare))];
  const last = parts[parts.length - 1]!;
  try {
    await planParts(parts, cuts, input, spare);

    /** The consumer is done with `events`: their batches' arrays go back to the threads that filled them. */
    const handBack = (events: ParseEvent[]) => {
      const back = new Map<Part, RecycledBatch[]>();
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
      const from: Part = await wake.any(lastWaits ? parts.slice(0, -1) : parts);
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

/** A thread of parse-worker.ts. */
class Part extends ThreadPart<WorkerResponse, RecycledBatch> {
  constructor(index: number, data: { keepShapes: boolean; prefix: string | null }, wake: Wakeup, spare: SpareBlocks) {
    super(index, new URL('./parse-worker.js', import.meta.url), data, 'COCO parser', wake, spare);
  }
}
