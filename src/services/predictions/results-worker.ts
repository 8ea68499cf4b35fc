import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { CHECKPOINT, pumpJsonTokens } from '../common/json-tokens.js';
import { PartInbox } from '../common/part-inbox.js';
import { DataVisorError } from '../errors.js';
import { newAnnotationColumns, transferList, type ColumnBuffers, type ColumnsBuilder, type Columns } from '../records/columns.js';
import { PlainResults } from './plain-results.js';
import { ResultsParser } from './results-reader.js';
import type { PartSummary, ResultsRequest, ResultsResponse, ResultsThreadOptions } from './results-wire.js';

/**
 * Worker thread: reads the bytes of a results file (or of its ranges, one after another) that the
 * main thread forwards and sends back the detections of each forwarded chunk as one column batch
 * (parse-results.ts). Each range is read in place while its results are plain (plain-results.ts);
 * from the first that is not, the token reader (results-reader.ts) reads the rest of the range.
 */
/** More than the batches in flight at once: two ranges' worth (parse-results.ts), one batch per chunk. */
const SPARE_MAX = 96;
/** A later range of a split file starts inside the results array: this text puts the tokenizer there. */
const RANGE_PREFIX = '[';

const port = parentPort!;
const options = workerData as ResultsThreadOptions;
/** Arrays of sent batches the main thread handed back, to build the next batches in (no garbage there). */
const spare: ColumnBuffers[] = [];

/** Where the range's rows go: the plain scan's, then the token reader's (which takes the builder over). */
let sink: { builder: ColumnsBuilder } = { builder: newAnnotationColumns() };
/** The range's plain scan, or null once the token reader reads it. */
let plain: PlainResults | null = null;
/** Detections before the range's first (a thread reading on from the middle of the file). */
let base = 0;
/** Bytes of the range the plain scan was given. */
let plainBytes = 0;
/** The token reader of the range, once it reads, and the queue its pump pulls chunks through. */
let parser: ResultsParser | null = null;
let inbox: PartInbox | null = null;

port.on('message', (m: ResultsRequest) => {
  if (m.type === 'recycle') {
    for (const b of m.batches) if (spare.length < SPARE_MAX) spare.push(b.buffers);
    return;
  }
  if (m.type === 'fresh') {
    // The previous range answered its checkpoint; a token pump it had waits for chunks that never
    // come and goes with its parser and inbox.
    startRange(true, 0, null);
    return;
  }
  if (m.type === 'file') {
    void readFile(m.path, m.start, m.end, m.then);
    return;
  }
  if (m.type === 'chunk') onChunk(m.data, true);
  else if (m.type === 'checkpoint') onRangeCheckpoint();
  else onRangeEnd();
});

/** Bytes read from a local file at a time. */
const FILE_BLOCK = 256 * 1024;

/** Reads bytes `start`…`end` of a local file as chunks of the range, then its checkpoint or end. */
async function readFile(path: string, start: number, end: number, then: 'checkpoint' | 'end'): Promise<void> {
  let fd: number | null = null;
  try {
    fd = fs.openSync(path, 'r');
    for (let at = start; at < end; ) {
      const block = new Uint8Array(Math.min(FILE_BLOCK, end - at));
      const n = fs.readSync(fd, block, 0, block.length, at);
      if (n === 0) throw new DataVisorError('FILE_NOT_FOUND', `${path} ended at byte ${at}, before the ${end} bytes it had: it changed during the import`);
      at += n;
      onChunk(n === block.length ? block : block.subarray(0, n), false);
      // Lets the thread's messages and a token reader's pump run between blocks.
      await new Promise((r) => setImmediate(r));
    }
  } catch (e) {
    const err = e instanceof DataVisorError ? e : new DataVisorError('FILE_NOT_FOUND', `Cannot read ${path}: ${(e as Error).message}`);
    send({ type: 'error', code: err.code, message: err.message });
    return;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  if (then === 'checkpoint') onRangeCheckpoint();
  else onRangeEnd();
}

/** A chunk of the range: `forwarded` by the main thread (its block goes back with the answer) or read here. */
function onChunk(data: Uint8Array, forwarded: boolean): void {
  if (inbox) {
    inbox.push(data);
    return;
  }
  const p = plain!;
  const rest = p.scan(data);
  plainBytes += data.byteLength;
  if (rest === null) {
    send({ type: 'batch', bytesRead: plainBytes, columns: take(), block: forwarded ? (data.buffer as ArrayBuffer) : undefined });
    return;
  }
  // The token reader reads from the first result the scan does not read; the chunk's answer goes with its last byte.
  tokens(plainBytes - rest.byteLength, forwarded).push(rest);
}

function onRangeCheckpoint(): void {
  if (inbox) inbox.push(CHECKPOINT);
  else send({ type: 'checkpoint', bytesRead: plainBytes, ok: plain!.betweenResults, columns: take(), summary: summary() });
}

function onRangeEnd(): void {
  if (inbox) return inbox.push(null);
  const p = plain!;
  if (p.complete) return send({ type: 'done', bytesRead: plainBytes, columns: take(), summary: summary() });
  // The text ends where the scan cannot say what is wrong (a result cut short, no `]`): the token
  // reader reads its last bytes, whole, and says it.
  const carry = p.takeCarry();
  tokens(plainBytes, true, carry).push(null);
}

function startRange(insideArray: boolean, before: number, firstHasBbox: boolean | null): void {
  sink = { builder: sink.builder };
  plain = new PlainResults(sink, { insideArray, firstHasBbox });
  base = before;
  plainBytes = 0;
  parser = null;
  inbox = null;
}

/**
 * Hands the rest of the range to a token reader that starts where the plain scan stopped (with
 * `tail`, the range's last bytes, when no chunk follows); returns its queue.
 */
function tokens(bytesBefore: number, forwarded: boolean, tail: Uint8Array | null = null): PartInbox {
  const p = plain!;
  const reader = new ResultsParser({ count: base + p.count, firstHasBbox: p.firstHasBbox });
  reader.builder = sink.builder;
  sink = reader;
  parser = reader;
  const box = new PartInbox();
  box.bytesRead = bytesBefore;
  inbox = box;
  // Inside the array unless the scan stopped before its `[` (a COCO dataset file, a BOM): then from the text's start.
  const prefix = (p.insideArray ? RANGE_PREFIX : '') + (tail ? Buffer.from(tail).toString('utf8') : '');
  void run(reader, box, prefix === '' ? null : prefix, forwarded);
  return box;
}

/** The detections read since the last answer, if any. */
const take = (): Columns | null => {
  if (sink.builder.count === 0) return null;
  const columns = sink.builder.build();
  sink.builder = newAnnotationColumns(spare.pop());
  return columns;
};

const summary = (): PartSummary => {
  const p = plain!;
  const r = parser;
  return {
    count: p.count + (r?.read ?? 0),
    nonFinite: r?.nonFinite ?? 0,
    nonFiniteExamples: r ? r.nonFiniteExamples.map((e) => e + p.count) : [],
    firstHasBbox: p.firstHasBbox ?? r?.firstHasBbox ?? null,
  };
};

const send = (msg: ResultsResponse) => {
  const transfer = msg.type !== 'error' && msg.columns ? transferList(msg.columns) : [];
  if (msg.type === 'batch' && msg.block) transfer.push(msg.block);
  port.postMessage(msg, transfer);
};

async function run(p: ResultsParser, box: PartInbox, prefix: string | null, forwarded: boolean): Promise<void> {
  /** A chunk fully read: its columns so far, and its block back if the main thread sent it. */
  const answered = (block: ArrayBuffer) => send({ type: 'batch', bytesRead: box.bytesRead, columns: take(), block: forwarded ? block : undefined });
  const onCheckpoint = (closedObject: boolean) => {
    send({ type: 'checkpoint', bytesRead: box.bytesRead, ok: closedObject && p.betweenResults, columns: take(), summary: summary() });
  };
  try {
    const pump = pumpJsonTokens(box.chunks(prefix, answered), p.onTokens, (relation) => p.location(relation), {
      onNonStandardNumbers: p.expectNonStandard,
      onCheckpoint,
    });
    let r = await pump.next();
    while (!r.done) r = await pump.next();
    p.finish();
    send({ type: 'done', bytesRead: box.bytesRead, columns: take(), summary: summary() });
  } catch (e) {
    const err = e instanceof DataVisorError ? e : new DataVisorError('INVALID_JSON', (e as Error).message);
    send({ type: 'error', code: err.code, message: err.message });
  }
}

startRange(options.prefix !== null, options.resume?.count ?? 0, options.resume?.firstHasBbox ?? null);
