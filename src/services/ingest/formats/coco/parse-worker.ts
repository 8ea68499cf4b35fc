import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { DataVisorError } from '../../../errors.js';
import {
  newAnnotationColumns, newImageColumns, pushAnnotation, pushImage, transferList, type ColumnBuffers, type ColumnsBuilder,
} from '../../../records/columns.js';
import { CocoReader } from './coco-reader.js';
import { CHECKPOINT, pumpJsonTokens } from '../../../common/json-tokens.js';
import { PartInbox } from '../../../common/part-inbox.js';
import { ShapeSkipper } from './shape-skipper.js';
import type { CocoSink, ParseEvent, WorkerRequest, WorkerResponse } from './wire.js';

/**
 * Worker thread: tokenizes the COCO bytes the main thread forwards and sends back records in
 * batches. Parsing is the cost of ingestion (~5.5 s for 450 MB) and DuckDB's appender another
 * ~2 s; on two cores they overlap, and the server's event loop stays free while a file parses.
 */

const port = parentPort!;
let events: ParseEvent[] = [];
/** The batch being filled; a section change or the end of a forwarded chunk closes it. */
let columns: { kind: 'images' | 'annotations'; builder: ColumnsBuilder } | null = null;
/**
 * Arrays of sent batches the main thread handed back. Built in these, batches make no garbage on
 * the main thread: there, freed arrays waited for a collection that only external memory
 * triggers, up to ~50 MB of them at a time (docs/ingestion.md, "The parser").
 */
const spare: Record<'images' | 'annotations', ColumnBuffers[]> = { images: [], annotations: [] };
/** More than the batches in flight at once (4 chunks' worth, a few sections each). */
const SPARE_MAX = 16;

const flushColumns = () => {
  if (columns && columns.builder.count > 0) events.push({ kind: columns.kind, columns: columns.builder.build() });
  columns = null;
};

const sink: CocoSink = {
  section(name) {
    flushColumns();
    events.push({ kind: 'section', name });
  },
  info(info) {
    flushColumns();
    events.push({ kind: 'info', info });
  },
  license(license) {
    flushColumns();
    const last = events[events.length - 1];
    if (last?.kind === 'licenses') last.licenses.push(license);
    else events.push({ kind: 'licenses', licenses: [license] });
  },
  image(image) {
    if (columns?.kind !== 'images') {
      flushColumns();
      columns = { kind: 'images', builder: newImageColumns(spare.images.pop()) };
    }
    pushImage(columns.builder, image);
  },
  annotation(a) {
    if (columns?.kind !== 'annotations') {
      flushColumns();
      columns = { kind: 'annotations', builder: newAnnotationColumns(spare.annotations.pop()) };
    }
    pushAnnotation(columns.builder, a);
  },
  category(category) {
    flushColumns();
    const last = events[events.length - 1];
    if (last?.kind === 'categories') last.categories.push(category);
    else events.push({ kind: 'categories', categories: [category] });
  },
};

interface PartData {
  keepShapes?: boolean;
  /** A later part of a split file starts inside the annotations array: this text puts the tokenizer there. */
  prefix?: string;
}
const data = (workerData ?? {}) as PartData;
// Without shapes to keep, polygons are summarized before tokenizing (shape-skipper.ts); the
// summaries carry a nonce no file can know.
const shapePrefix = `dvshape-${randomBytes(8).toString('hex')}:`;
const skipper = data.keepShapes === true ? null : new ShapeSkipper(shapePrefix);
const reader = new CocoReader(sink, data.keepShapes === true, skipper ? shapePrefix : null);

/** Chunks arrive by message; the token pump pulls them through this queue. */
const inbox = new PartInbox();
port.on('message', (m: WorkerRequest) => {
  if (m.type === 'recycle') {
    for (const b of m.batches) if (spare[b.kind].length < SPARE_MAX) spare[b.kind].push(b.buffers);
    return;
  }
  inbox.push(m.type === 'chunk' ? m.data : m.type === 'checkpoint' ? CHECKPOINT : null);
});

const take = (): ParseEvent[] => {
  flushColumns();
  const out = events;
  events = [];
  return out;
};

const send = (msg: WorkerResponse) => {
  const evs = msg.type === 'error' ? [] : msg.events;
  const transfer = evs.flatMap((e) => (e.kind === 'annotations' || e.kind === 'images' ? transferList(e.columns) : []));
  if (msg.type === 'batch' && msg.block) transfer.push(msg.block);
  port.postMessage(msg, transfer);
};

const onCheckpoint = (closedObject: boolean) => {
  const ok = closedObject && reader.betweenAnnotations;
  send({ type: 'checkpoint', bytesRead: inbox.bytesRead, ok, sections: reader.sections, nonStandardNumbers: reader.nonStandardNumbers, events: take() });
};

/** A chunk fully read: its events so far, and its block back. */
// The block goes back to be read into again. Dropped here, it would wait for a full collection (a
// young one does not free it once it has lived through two), tens of MB of them at a time
// (docs/ingestion.md, "The parser").
const answered = (block: ArrayBuffer) => send({ type: 'batch', bytesRead: inbox.bytesRead, events: take(), block });

async function run(): Promise<void> {
  try {
    const pump = pumpJsonTokens(inbox.chunks(data.prefix, answered), reader.onTokens, (relation) => reader.location(relation), {
      onNonStandardNumbers: reader.expectNonStandardNumbers,
      onCheckpoint,
      transform: skipper ? (text) => skipper.transform(text) : undefined,
    });
    let r = await pump.next();
    while (!r.done) r = await pump.next();
    reader.finish(!data.prefix);
    send({ type: 'done', bytesRead: inbox.bytesRead, nonStandardNumbers: reader.nonStandardNumbers, sections: reader.sections, events: take() });
  } catch (e) {
    const err = e instanceof DataVisorError ? e : new DataVisorError('INVALID_JSON', (e as Error).message);
    send({ type: 'error', code: err.code, message: err.message });
  }
}

void run();
