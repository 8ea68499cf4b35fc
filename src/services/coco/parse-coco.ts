import { Worker } from 'node:worker_threads';
import { DataVisorError, type ErrorCode } from '../errors.js';
import type { ParseEvent, WorkerRequest, WorkerResponse } from './batch.js';

/** Chunks forwarded ahead of the worker's answers: enough to keep it busy, few enough to bound memory. */
const IN_FLIGHT = 4;

export interface ParseProgress {
  bytesRead: number;
  events: ParseEvent[];
}

export interface ParseSummary {
  bytesRead: number;
  nonStandardNumbers: number;
}

/**
 * Parses a COCO byte stream in a worker thread and yields its records in file order, in batches.
 * Memory stays bounded: at most IN_FLIGHT chunks and their records are between the threads.
 * Returning early (a consumer's `return()`, or a throw) terminates the worker and the source.
 */
export async function* parseCoco(
  source: AsyncIterable<Uint8Array>,
  options: { keepShapes?: boolean } = {},
): AsyncGenerator<ParseProgress, ParseSummary> {
  const worker = new Worker(new URL('./parse-worker.js', import.meta.url), { workerData: { keepShapes: options.keepShapes === true } });
  const inbox: WorkerResponse[] = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  worker.on('message', (m: WorkerResponse) => {
    inbox.push(m);
    wake?.();
  });
  worker.on('error', (e) => {
    failure = e;
    wake?.();
  });
  worker.on('exit', (code) => {
    failure ??= new DataVisorError('INTERNAL', `the COCO parser thread stopped unexpectedly (exit code ${code})`);
    wake?.();
  });
  const next = async (): Promise<WorkerResponse> => {
    while (inbox.length === 0) {
      if (failure) throw failure;
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
    return inbox.shift()!;
  };
  // A chunk may be a view into a larger pooled buffer, which cloning would copy whole: copy the
  // view once into a buffer of its own and transfer that.
  const post = (m: WorkerRequest) => {
    if (m.type !== 'chunk') return worker.postMessage(m);
    const data = new Uint8Array(m.data);
    worker.postMessage({ type: 'chunk', data }, [data.buffer]);
  };

  const input = source[Symbol.asyncIterator]();
  let inFlight = 0;
  let ended = false;
  try {
    for (;;) {
      while (!ended && inFlight < IN_FLIGHT) {
        const r = await input.next();
        if (r.done) {
          post({ type: 'end' });
          ended = true;
        } else if (r.value.byteLength > 0) {
          post({ type: 'chunk', data: r.value });
          inFlight++;
        }
      }
      const m = await next();
      if (m.type === 'error') throw new DataVisorError(m.code as ErrorCode, m.message);
      if (m.type === 'done') {
        if (m.events.length > 0) yield { bytesRead: m.bytesRead, events: m.events };
        return { bytesRead: m.bytesRead, nonStandardNumbers: m.nonStandardNumbers };
      }
      inFlight--;
      yield { bytesRead: m.bytesRead, events: m.events };
    }
  } finally {
    worker.removeAllListeners('exit');
    await worker.terminate();
    await input.return?.();
  }
}
