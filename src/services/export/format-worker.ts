import { parentPort } from 'node:worker_threads';
import type { ColumnTable } from '../db/connection.js';
import { formatChunk, type RowKind } from './format-rows.js';

/**
 * Worker thread: formats the chunks of rows an export streams (format-thread.ts) into the file's
 * bytes, in the order they come, while the main thread reads the next ones out of DuckDB.
 */
parentPort!.on('message', (m: { kind: RowKind; table: ColumnTable; first: boolean }) => {
  try {
    // Not from Buffer's shared pool: the buffer is transferred whole.
    const text = formatChunk(m.kind, m.table, m.first);
    const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
    bytes.write(text, 0, 'utf8');
    parentPort!.postMessage({ bytes }, [bytes.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
});
