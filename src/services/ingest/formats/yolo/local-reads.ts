import { Worker } from 'node:worker_threads';
import { DataVisorError } from '../../../errors.js';

export interface LocalReadJob {
  id: number;
  /** Image paths; for each, its label path or null (none, or known not to exist). */
  images: string[];
  labels: (string | null)[];
}

export interface LocalReadResult {
  id: number;
  /** width, height per image; NaN where the header could not be read (`reasons` says why). */
  sizes: Float64Array;
  reasons: (string | null)[];
  /** Label texts end to end: image i's is `labels.slice(labelEnds[i - 1] ?? 0, labelEnds[i])` where `hasLabel[i]` is 1 (no label file: 0). */
  labels: string;
  labelEnds: Int32Array;
  hasLabel: Uint8Array;
  bytes: number;
  /** A read that fails the ingest (a label file that cannot be read, not one that is missing). */
  error: string | null;
}

/** The read thread (read-worker.ts): jobs go in order and come back in order. */
export class LocalReads {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: LocalReadResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor() {
    this.worker = new Worker(new URL('./read-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 16 } });
    this.worker.on('message', (r: LocalReadResult) => {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (r.error !== null) w?.reject(new DataVisorError('INGEST_FAILED', `Could not read a label file: ${r.error}`));
      else w?.resolve(r);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new DataVisorError('INTERNAL', `the YOLO read thread stopped unexpectedly (exit code ${code})`)));
  }

  read(images: string[], labels: (string | null)[]): Promise<LocalReadResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const job: LocalReadJob = { id, images, labels };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
  }
}
