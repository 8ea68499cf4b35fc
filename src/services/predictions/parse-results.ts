import { DataVisorError, type ErrorCode } from '../errors.js';
import { findCuts, IN_FLIGHT, Part as ThreadPart, planParts, SpareBlocks, Wakeup, type ParseInput } from '../common/parse-parts.js';
import { buffersOf, type Columns } from '../records/columns.js';
import type { PartSummary, RecycledBatch, ResultsResponse } from './results-wire.js';

/** Puts a later part's tokenizer inside the results array, where its bytes begin. */
const PART_PREFIX = '[';
/** Bytes looked at for the file's first character. */
const HEAD_BYTES = 1024;
const EXAMPLES = 5;

export interface ResultsBatch {
  /** Their arrays are refilled once the next step is asked for: use them before. */
  columns: Columns;
  /** The part that read them (0: the first, or the only one); positions are within the part. */
  part: number;
}

export interface ResultsStep {
  bytesRead: number;
  batches: ResultsBatch[];
  /**
   * The split did not hold: every detection of the parts after the first (in this step's batches
   * too) is void, and the first part reads them again.
   */
  partsDropped: boolean;
}

export interface ResultsSummary {
  bytesRead: number;
  count: number;
  /** Detections read by each part, in file order: part k's positions follow the counts of the parts before it. */
  partCounts: number[];
  /** Detections whose bbox held NaN / Infinity (kept without a box), with the first positions in the file. */
  nonFiniteBoxes: { count: number; examples: number[] };
  /** Whether the file's first detection had a non-empty bbox: pycocotools then takes every detection's area from its box. */
  firstHasBbox: boolean | null;
}

/**
 * Parses a COCO results file in worker threads (results-worker.ts, the ResultsParser) and yields
 * its detections in column batches, as the COCO dataset parser does (parse-coco.ts,
 * docs/ingestion.md): a results array over a few MB is split after even points at `}` `,` `{`,
 * and each later part starts a tokenizer inside the array. The split is a guess the parts check:
 *  - each part before the last must end exactly after an element of the array (its last `}` is
 *    tokenized alone and must close a result), and the last must read to the file's end;
 *  - pycocotools' area rule follows the file's first detection (with a box or not): each later
 *    part assumes its own first detection's, which must be the first part's.
 * Any miss, or any error in a later part, drops the later parts (`partsDropped`) and the first
 * part reads on to the end alone, so a file the guess does not fit is read exactly as without a
 * split: the same rows and the same errors, with their positions. A COCO dataset file (its
 * `annotations` read as results) is read in one part.
 *
 * Memory stays bounded: at most IN_FLIGHT chunks per thread are read and not yet handed to the
 * consumer. Returning early (a consumer's `return()`, or a throw) terminates the threads and
 * closes the file.
 */
export async function* parseResults(input: ParseInput, options: { threads?: number; minPartBytes?: number } = {}): AsyncGenerator<ResultsStep, ResultsSummary> {
  const cuts = (options.threads ?? 1) > 1 && (await startsWithArray(input)) ? await findCuts(input, options) : [];
  const wake = new Wakeup();
  const spare = new SpareBlocks(2 * IN_FLIGHT * (cuts.length + 1));
  const parts = [null, ...cuts.map(() => PART_PREFIX)].map((prefix, i) => new Part(i, prefix, wake, spare));
  const head = parts[0]!;
  const last = parts[parts.length - 1]!;
  try {
    await planParts(parts, cuts, input, spare);

    /** The consumer is done with `batches`: their arrays go back to the threads that filled them. */
    const handBack = (batches: ResultsBatch[]) => {
      for (const part of parts) {
        const mine = batches.filter((b) => b.part === part.index).map((b) => ({ buffers: buffersOf(b.columns) }));
        if (mine.length > 0) part.recycle(mine);
      }
    };

    let speculating = cuts.length > 0;
    /** What each part read, once it reached its checkpoint (or, the last, its end). */
    const finished = new Map<number, PartSummary>();
    const readRest = async () => head.plan(await input.open({ start: cuts[0]!.end, end: input.size! }, spare), 'end');

    for (;;) {
      const batches: ResultsBatch[] = [];
      if (!speculating) {
        const m = await head.next();
        if (m.type === 'error') throw new DataVisorError(m.code as ErrorCode, m.message);
        if (m.columns) batches.push({ columns: m.columns, part: 0 });
        if (m.type === 'done') {
          if (batches.length > 0) yield { bytesRead: m.bytesRead, batches, partsDropped: false };
          return summarize([m.summary], m.bytesRead);
        }
        // A checkpoint left over from a split dropped while the first part was still reading.
        if (m.type === 'checkpoint') await readRest();
        yield { bytesRead: head.bytesRead, batches, partsDropped: false };
        handBack(batches);
        continue;
      }

      const from: Part = await wake.any(parts.filter((p) => !finished.has(p.index)));
      const m = from.answer();
      let miss = false;
      if (m.type === 'error') {
        if (from === head) throw new DataVisorError(m.code as ErrorCode, m.message);
        miss = true;
      } else {
        if (m.columns) batches.push({ columns: m.columns, part: from.index });
        if (m.type !== 'batch') {
          finished.set(from.index, m.summary);
          if (m.type === 'checkpoint' ? !m.ok || from === last : from !== last) miss = true;
        }
      }
      if (!miss && finished.size === parts.length) {
        const first = finished.get(0)!.firstHasBbox;
        const summaries = parts.map((p) => finished.get(p.index)!);
        if (summaries.every((s) => s.firstHasBbox === null || s.firstHasBbox === first)) {
          if (batches.length > 0) yield { bytesRead: input.size!, batches, partsDropped: false };
          return summarize(summaries, input.size!);
        }
        miss = true;
      }
      if (miss) {
        speculating = false;
        await Promise.all(parts.slice(1).map((p) => p.close()));
        // Else its checkpoint is still to come, and the first part reads on from there.
        if (finished.has(0)) await readRest();
      }
      yield { bytesRead: speculating ? parts.reduce((n, p) => n + p.bytesRead, 0) : head.bytesRead, batches, partsDropped: miss };
      handBack(batches);
    }
  } finally {
    await Promise.all(parts.map((p) => p.close()));
  }
}

/** The parts' counts in file order: each part's positions follow the counts of the parts before it. */
function summarize(parts: PartSummary[], bytesRead: number): ResultsSummary {
  let offset = 0;
  const examples: number[] = [];
  for (const p of parts) {
    for (const e of p.nonFiniteExamples) if (examples.length < EXAMPLES) examples.push(offset + e);
    offset += p.count;
  }
  return {
    bytesRead,
    count: offset,
    partCounts: parts.map((p) => p.count),
    nonFiniteBoxes: { count: parts.reduce((n, p) => n + p.nonFinite, 0), examples },
    firstHasBbox: parts[0]!.firstHasBbox,
  };
}

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
  constructor(index: number, prefix: string | null, wake: Wakeup, spare: SpareBlocks) {
    super(index, new URL('./results-worker.js', import.meta.url), { prefix }, 'results parser', wake, spare);
  }
}
