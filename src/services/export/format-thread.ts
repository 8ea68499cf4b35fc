import { Worker } from 'node:worker_threads';
import type { ColumnTable } from '../db/connection.js';
import { DataVisorError } from '../errors.js';
import type { RowKind } from './format-rows.js';

/**
 * A worker thread (format-worker.ts) that formats an export's chunks of rows while the main thread
 * streams the next ones out of DuckDB: on two cores the text no longer waits for the rows, nor the
 * rows for the text. Answers come in the order chunks were sent.
 */
export class FormatThread {
  private readonly worker = new Worker(new URL('./format-worker.js', import.meta.url));
  private readonly waiting: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;

  constructor() {
    this.worker.on('message', (m: { bytes?: Uint8Array; error?: string }) => {
      const next = this.waiting.shift();
      if (m.bytes) next?.resolve(new Uint8Array(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
      else next?.reject(new DataVisorError('INTERNAL', `The export could not write a row: ${m.error}`));
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new DataVisorError('INTERNAL', `the export's format thread stopped (exit code ${code})`)));
  }

  /** The chunk's text as UTF-8 bytes; its numbers' buffers go to the thread (the table is spent). */
  format(kind: RowKind, table: ColumnTable, first: boolean): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    const transfer = Object.values(table.numbers).map((a) => a.buffer as ArrayBuffer);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage({ kind, table, first }, transfer);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
