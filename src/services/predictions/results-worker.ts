import { parentPort, workerData } from 'node:worker_threads';
import { CHECKPOINT, pumpJsonTokens } from '../common/json-tokens.js';
import { PartInbox } from '../common/part-inbox.js';
import { DataVisorError } from '../errors.js';
import { newAnnotationColumns, transferList, type ColumnBuffers, type Columns } from '../records/columns.js';
import { ResultsParser } from './results-reader.js';
import type { PartSummary, ResultsRequest, ResultsResponse, ResultsThreadOptions } from './results-wire.js';

/**
 * Worker thread: tokenizes the bytes of a results file (or of its ranges, one after another) that
 * the main thread forwards and sends back the detections of each forwarded chunk as one column
 * batch (parse-results.ts).
 */
/** More than the batches in flight at once: two ranges' worth (parse-results.ts), one batch per chunk. */
const SPARE_MAX = 96;
/** A later range of a split file starts inside the results array: this text puts the tokenizer there. */
const RANGE_PREFIX = '[';

const port = parentPort!;
const options = workerData as ResultsThreadOptions;
/** Arrays of sent batches the main thread handed back, to build the next batches in (no garbage there). */
const spare: ColumnBuffers[] = [];

/** The range being read: its parser, and the queue its token pump pulls chunks through. */
let parser = new ResultsParser(options.resume);
let inbox = new PartInbox();

port.on('message', (m: ResultsRequest) => {
  if (m.type === 'recycle') {
    for (const b of m.batches) if (spare.length < SPARE_MAX) spare.push(b.buffers);
    return;
  }
  if (m.type === 'fresh') {
    // The previous range answered its checkpoint; its pump waits for chunks that never come and
    // goes with its parser and inbox.
    read(new ResultsParser(), new PartInbox(), RANGE_PREFIX);
    return;
  }
  inbox.push(m.type === 'chunk' ? m.data : m.type === 'checkpoint' ? CHECKPOINT : null);
});

/** The detections read since the last answer, if any. */
const take = (): Columns | null => {
  if (parser.builder.count === 0) return null;
  const columns = parser.builder.build();
  parser.builder = newAnnotationColumns(spare.pop());
  return columns;
};

const summary = (): PartSummary => ({
  count: parser.read, nonFinite: parser.nonFinite, nonFiniteExamples: parser.nonFiniteExamples, firstHasBbox: parser.firstHasBbox,
});

const send = (msg: ResultsResponse) => {
  const transfer = msg.type !== 'error' && msg.columns ? transferList(msg.columns) : [];
  if (msg.type === 'batch' && msg.block) transfer.push(msg.block);
  port.postMessage(msg, transfer);
};

function read(p: ResultsParser, box: PartInbox, prefix: string | null): void {
  parser = p;
  inbox = box;
  void run(p, box, prefix);
}

async function run(p: ResultsParser, box: PartInbox, prefix: string | null): Promise<void> {
  /** A chunk fully read: its columns so far, and its block back. */
  const answered = (block: ArrayBuffer) => send({ type: 'batch', bytesRead: box.bytesRead, columns: take(), block });
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

read(parser, inbox, options.prefix);
