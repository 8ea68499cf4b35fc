import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { HEAD_BYTES, MAX_LABEL_BYTES, MORE_HEAD_BYTES, sizeOf } from './file-reads.js';
import type { LocalReadJob, LocalReadResult } from './local-reads.js';

/**
 * The YOLO reader's local file reads, in a thread of their own: plain synchronous open, read and
 * close calls, one file after another. Reading many small files through the libuv pool costs more
 * per file than the read itself (a hand-off per call), and here the main thread stays free to
 * append the records to DuckDB while the next images are read.
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

parentPort!.on('message', (job: LocalReadJob) => {
  const n = job.images.length;
  const sizes = new Float64Array(n * 2);
  const reasons: (string | null)[] = new Array<string | null>(n).fill(null);
  // Label texts travel as one string and where each ends (one copy instead of one per file).
  let labels = '';
  const labelEnds = new Int32Array(n);
  const hasLabel = new Uint8Array(n);
  let bytes = 0;
  let error: string | null = null;
  try {
    for (let i = 0; i < n; i++) {
      const h = readHeader(job.images[i]!);
      sizes[2 * i] = h.width;
      sizes[2 * i + 1] = h.height;
      reasons[i] = h.reason;
      bytes += h.bytes;
      const file = job.labels[i];
      const text = file ? readLabel(file) : null;
      if (text !== null) {
        labels += text;
        hasLabel[i] = 1;
        bytes += text.length;
      }
      labelEnds[i] = labels.length;
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  const result: LocalReadResult = { id: job.id, sizes, reasons, labels, labelEnds, hasLabel, bytes, error };
  parentPort!.postMessage(result, [sizes.buffer, labelEnds.buffer, hasLabel.buffer]);
});
