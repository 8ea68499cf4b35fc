import type { RecordEvent } from '../../records/events.js';
import type { Warning } from '../../records/types.js';
import type { InputLocation, StorageService } from '../../storage/index.js';

/**
 * The interface every dataset format implements. A reader locates its inputs (`resolve`), then
 * streams them as format-neutral record batches (`read`); the ingest around it knows records,
 * never a format. Adding a format is a folder under formats/ and one line in registry.ts.
 */
export interface FormatReader {
  /** Stored as the dataset's `format`. */
  readonly name: string;
  /**
   * Whether an input looks like this format, from cheap facts about it (`--format auto`): its
   * name, the first bytes of a file, the entries of a folder. No two readers claim the same input.
   */
  detect(probe: InputProbe): boolean;
  /** Checks and locates the inputs (data roots, existence, kind) before anything is read. */
  resolve(request: ReaderRequest, storage: StorageService): Promise<ReaderSource>;
  /**
   * Streams the records. Each step's column arrays may be reused once the next step is asked for,
   * so a consumer uses a step before it asks for the next. Returning early (`return()`) must free
   * whatever the reader holds (threads, open files).
   */
  read(source: ReaderSource, options: ReadOptions): AsyncGenerator<ReadStep, ReadSummary>;
}

export interface ReaderRequest {
  annotationPath: string;
  /** annotation_path, already resolved and checked against the data roots by the probe. */
  input: InputLocation;
  /** What detection saw of it: a reader names what an input it cannot read looks like. */
  probe: InputProbe;
  /** Optional where the format says where its images are. */
  imageDir: string | null;
}

export interface ReaderSource {
  storage: StorageService;
  annotation: InputLocation;
  /** The folder file names are relative to: what the dataset stores and images are served from. */
  images: InputLocation;
  /** Bytes `read` goes through, for progress; null when unknown. */
  bytesTotal: number | null;
  /** The dataset's name when the request gives none. */
  defaultName: string;
  /**
   * The reader promises the writer's `rowsInOrder` (db/dataset-writer.ts: image ids 0..n-1 in
   * order, each image's annotations right after it, final category ids), so annotations can be
   * written straight into their table. Checked row by row by the writer.
   */
  rowsInOrder?: boolean;
}

export interface ReadOptions {
  /** Keep polygons, RLE masks and keypoints (DATAVISOR_STORE_SHAPES). */
  keepShapes: boolean;
  /** Threads a large input may be parsed on, and the smallest part worth one (docs/ingestion.md). */
  threads: number;
  minPartBytes: number;
}

export interface ReadStep {
  bytesRead: number;
  events: RecordEvent[];
}

export interface ReadSummary {
  bytesRead: number;
  /** Parts the input was read in (1: not split, or the split did not hold). */
  parts: number;
  /** Quirks only the reader can see (the writer finds the rest in SQL). */
  warnings: Warning[];
}

/** What format detection knows of an input before any reader reads it. */
export interface InputProbe {
  kind: 'file' | 'directory';
  /** The file's or folder's own name (`instances_val2017.json`, `data.yaml`, `VOC2012`). */
  name: string;
  /**
   * Files: their first 4 KiB as text (BOM removed); null for an object in a bucket, which is not
   * read twice (detection goes by its name). Folders: empty.
   */
  head: string | null;
  /** Folders: the names of their entries (a folder's end in `/`), at most a few hundred. Files: empty. */
  entries: readonly string[];
}
