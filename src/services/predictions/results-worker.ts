import { parentPort, workerData } from 'node:worker_threads';
import { CHECKPOINT, pumpJsonTokens } from '../common/json-tokens.js';
import { PartInbox } from '../common/part-inbox.js';
import { DataVisorError } from '../errors.js';
import { newAnnotationColumns, transferList, type ColumnBuffers, type Columns } from '../records/columns.js';
import { ResultsParser } from './results-reader.js';
import type { PartSummary, ResultsRequest, ResultsResponse } from './results-wire.js';

/**
 * Worker thread: tokenizes the bytes of a results file (or of one part of it) that the main
 * thread forwards and sends back the detections of each forwarded chunk as one column batch
 * (parse-results.ts).
 */
/** More than the batches in flight at once (IN_FLIGHT chunks, one batch each). */
const SPARE_MAX = 8;

const port = parentPort!;
/** A later part of a split file starts inside the results array: this text puts the tokenizer there. */
const prefix = (workerData as { prefix: string | null }).prefix;
const parser = new ResultsParser();
/** Arrays of sent batches the main thread handed back, to build the next batches in (no garbage there). */
const spare: ColumnBuffers[] = [];

/** Chunks arrive by message; the token pump pulls them through this queue. */
const inbox = new PartInbox();
port.on('message', (m: ResultsRequest) => {
  if (m.type === 'recycle') {
    for (const b of m.batches) if (spare.length < SPARE_MAX) spare.push(b.buffers);
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
  count: parser.count, nonFinite: parser.nonFinite, nonFiniteExamples: parser.nonFiniteExamples, firstHasBbox: parser.firstHasBbox,
});

const send = (msg: ResultsResponse) => {
  const transfer = msg.type !== 'error' && msg.columns ? transferList(msg.columns) : [];
  if (msg.type === 'batch' && msg.block) transfer.push(msg.block);
  port.postMessage(msg, transfer);
};

const onCheckpoint = (closedObject: boolean) => {
  send({ type: 'checkpoint', bytesRead: inbox.bytesRead, ok: closedObject && parser.betweenResults, columns: take(), summary: summary() });
};

/** A chunk fully read: its columns so far, and its block back. */
const answered = (block: ArrayBuffer) => send({ type: 'batch', bytesRead: inbox.bytesRead, columns: take(), block });

async function run(): Promise<void> {
  try {
    const pump = pumpJsonTokens(inbox.chunks(prefix, answered), parser.onTokens, (relation) => parser.location(relation), {
      onNonStandardNumbers: parser.expectNonStandard,
      onCheckpoint,
    });
    let r = await pump.next();
    while (!r.done) r = await pump.next();
    parser.finish();
    send({ type: 'done', bytesRead: inbox.bytesRead, columns: take(), summary: summary() });
  } catch (e) {
    const err = e instanceof DataVisorError ? e : new DataVisorError('INVALID_JSON', (e as Error).message);
    send({ type: 'error', code: err.code, message: err.message });
  }
}

void run();
