import { Worker } from 'node:worker_threads';
import { DataVisorError } from '../../../errors.js';
import type { VocDocument } from './voc-xml.js';

/** Main thread → read thread: files to read and parse, in order (a path, or why it is skipped unread). */
export interface XmlReadRequest {
  id: number;
  files: (string | { skip: string })[];
  maxBytes: number;
}

/** One file: its document, or why it was skipped (not well-formed, too large…). */
export interface XmlRead {
  bytes: number;
  doc: VocDocument | null;
  error: string | null;
}

/** Read thread → main thread. `failed`: an I/O error other than a skip, which fails the ingest. */
export type XmlReadResponse =
  | { kind: 'read'; id: number; files: XmlRead[] }
  | { kind: 'failed'; id: number; code: string | null; message: string };

/**
 * The VOC reader's read thread (read-worker.ts): batches of local XML files go to it and come back
 * parsed, in the order they were sent. Documents cross by structured clone, which keeps every own
 * key (an element named `__proto__` stays a plain key) but gives objects a prototype again: the
 * reader only reads own keys of them.
 */
export class XmlReads {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: XmlRead[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor() {
    this.worker = new Worker(new URL('./read-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 16 } });
    this.worker.on('message', (r: XmlReadResponse) => {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (r.kind === 'read') w?.resolve(r.files);
      else w?.reject(Object.assign(new Error(r.message), r.code ? { code: r.code } : {}));
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new DataVisorError('INTERNAL', `the VOC read thread stopped unexpectedly (exit code ${code})`)));
  }

  read(files: XmlReadRequest['files'], maxBytes: number): Promise<XmlRead[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, files, maxBytes } satisfies XmlReadRequest);
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
