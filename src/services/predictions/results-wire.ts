import type { PartRequest } from '../common/parse-parts.js';
import type { ColumnBuffers, Columns } from '../records/columns.js';

/** What a results thread (results-worker.ts) and parse-results.ts send each other. */

/** The arrays of a batch the main thread is done with, for the thread to build its next batches in. */
export interface RecycledBatch {
  buffers: ColumnBuffers;
}

export type ResultsRequest = PartRequest<RecycledBatch>;

/** A results thread's start: where its first range begins. */
export interface ResultsThreadOptions {
  /** Puts the tokenizer inside the results array (a range after the file's first); null at the file's start. */
  prefix: string | null;
  /** Reading on from the middle of the file: the detections before, and the file's loadRes rule. */
  resume?: ResumeAt;
}

export interface ResumeAt {
  /** Detections before the range: the positions its errors name follow them. */
  count: number;
  /** Whether the file's first detection had a box (pycocotools' area rule follows it). */
  firstHasBbox: boolean | null;
}

/** What a range read, its positions within the range. */
export interface PartSummary {
  count: number;
  nonFinite: number;
  nonFiniteExamples: number[];
  /** Whether the part's first detection had a non-empty bbox (null: it has none). */
  firstHasBbox: boolean | null;
}

export type ResultsResponse =
  /** `columns`: the detections the chunk completed, if any. */
  | { type: 'batch'; bytesRead: number; columns: Columns | null; block?: ArrayBuffer }
  /** `ok`: the part's text ended right after an element of the results array. */
  | { type: 'checkpoint'; bytesRead: number; ok: boolean; columns: Columns | null; summary: PartSummary }
  | { type: 'done'; bytesRead: number; columns: Columns | null; summary: PartSummary }
  | { type: 'error'; code: string; message: string };
