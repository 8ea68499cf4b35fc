import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { transferList } from '../../../records/columns.js';
import { HEAD_BYTES, MAX_LABEL_BYTES, MORE_HEAD_BYTES, sizeOf } from './file-reads.js';
import type { ColumnPair, ReadRequest, ReadResponse } from './local-reads.js';
import { RecordBuilder, type RecordSettings } from './records.js';

/**
 * The YOLO reader's read thread: for each image of a batch, its header and its label file, read
 * with plain synchronous open, read and close calls, then its rows (records.ts). Reading many small
 * files through the libuv pool costs more per file than the reads themselves (hand-offs to the
 * pool, a lock the main thread waits on); here the main thread stays free to append the previous
 * batches to DuckDB meanwhile.
 */

const head = Buffer.allocUnsafe(HEAD_BYTES);

function readHeader(file: string): { width: number; height: number; bytes: number; reason: string | null } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    return { width: NaN, height: NaN, bytes: 0, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : (e as Error).message };
  }
  let bytes = 0;
  try {
    const got = fs.readSync(fd, head, 0, HEAD_BYTES, 0);
    bytes = got;
    let error: unknown;
    try {
      return { ...sizeOf(head.subarray(0, got)), bytes, reason: null };
    } catch (e) {
      error = e;
    }
    if (got === HEAD_BYTES) {
      const total = fs.fstatSync(fd).size;
      for (const n of MORE_HEAD_BYTES) {
        const want = Math.min(n, total);
        const more = Buffer.allocUnsafe(want);
        const m = fs.readSync(fd, more, 0, want, 0);
        bytes += m;
        try {
          return { ...sizeOf(more.subarray(0, m)), bytes, reason: null };
        } catch (e) {
          error = e;
        }
        if (want === total) break;
      }
    }
    return { width: NaN, height: NaN, bytes, reason: error instanceof Error ? error.message : String(error) };
  } catch (e) {
    return { width: NaN, height: NaN, bytes, reason: (e as Error).message };
  } finally {
    fs.closeSync(fd);
  }
}

function readLabel(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
  try {
    const got = fs.readSync(fd, head, 0, HEAD_BYTES, 0);
    if (got < HEAD_BYTES) return head.toString('utf8', 0, got);
    const size = fs.fstatSync(fd).size;
    if (size > MAX_LABEL_BYTES) throw new Error(`label file ${file} is larger than ${MAX_LABEL_BYTES / 1024 / 1024} MiB`);
    const all = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const m = fs.readSync(fd, all, at, size - at, at);
      if (m === 0) break;
      at += m;
    }
    return all.toString('utf8', 0, at);
  } finally {
    fs.closeSync(fd);
  }
}

const builder = new RecordBuilder(workerData as RecordSettings);
const spare: ColumnPair[] = [];

parentPort!.on('message', (req: ReadRequest) => {
  spare.push(...req.giveBack);
  builder.begin(req.firstImageId);
  let bytes = 0;
  try {
    for (let i = 0; i < req.images.length; i++) {
      const key = req.images[i]!;
      const h = readHeader(key);
      bytes += h.bytes;
      const labelKey = req.labels[i] ?? null;
      const text = labelKey === null ? null : readLabel(labelKey);
      if (text !== null) bytes += text.length;
      builder.add(key, req.split, h.width, h.height, h.reason, labelKey, text);
    }
  } catch (e) {
    const failed: ReadResponse = { kind: 'failed', id: req.id, message: e instanceof Error ? e.message : String(e) };
    parentPort!.postMessage(failed);
    return;
  }
  const batch = builder.take(spare.pop());
  const res: ReadResponse = { kind: 'batch', id: req.id, bytes, ...batch };
  parentPort!.postMessage(res, [...transferList(batch.images), ...transferList(batch.annotations)]);
});
