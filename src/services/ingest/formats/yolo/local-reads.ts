import { Worker } from 'node:worker_threads';
import type { ColumnBuffers } from '../../../records/columns.js';
import { DataVisorError } from '../../../errors.js';
import type { RecordBatch, RecordSettings } from './records.js';

/** Main thread → read thread. */
export interface ReadRequest {
  id: number;
  split: string | null;
  /** The id of the batch's first image (images are numbered in dataset order). */
  firstImageId: number;
  /** Image paths, and for each its label path or null (none, or known not to exist). */
  images: string[];
  labels: (string | null)[];
  /** Arrays of batches the ingest is done with, to build later batches in. */
  giveBack: ColumnPair[];
}

export interface ColumnPair {
  images: ColumnBuffers;
  annotations: ColumnBuffers;
}

/** Read thread → main thread. */
export type ReadResponse = ({ kind: 'batch'; id: number; bytes: number } & RecordBatch) | { kind: 'failed'; id: number; message: string };

export type ReadBatch = RecordBatch & { bytes: number };

const buffersIn = (p: ColumnPair[]) =>
  p.flatMap((g) => [g.images, g.annotations]).flatMap((b) => [b.nums.buffer as ArrayBuffer, ...b.ends.map((e) => e.buffer as ArrayBuffer), ...b.nulls.map((n) => n.buffer as ArrayBuffer)]);

/**
 * The read threads (read-worker.ts): each reads the headers and label files of the batches it is
 * given and turns them into rows, which is all an ingest does per image; the main thread is left
 * with walking the folders and appending the batches to DuckDB. Batches go to the threads in turn
 * and are awaited in the order they were sent.
 */
export class LocalReads {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (r: ReadBatch) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor(settings: RecordSettings, threads: number) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./read-worker.js', import.meta.url), {
        workerData: settings,
        resourceLimits: { maxYoungGenerationSizeMb: 16 },
      });
      worker.on('message', (r: ReadResponse) => {
        const w = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        if (r.kind === 'failed') w?.reject(new DataVisorError('INGEST_FAILED', `Could not read a label file: ${r.message}`));
        else w?.resolve(r);
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => this.fail(new DataVisorError('INTERNAL', `a YOLO read thread stopped unexpectedly (exit code ${code})`)));
      this.workers.push(worker);
    }
  }

  read(split: string | null, firstImageId: number, images: string[], labels: (string | null)[], giveBack: ColumnPair[]): Promise<ReadBatch> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const req: ReadRequest = { id, split, firstImageId, images, labels, giveBack };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.workers[id % this.workers.length]!.postMessage(req, buffersIn(giveBack));
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      w.removeAllListeners('exit');
      await w.terminate();
    }));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
  }
}
