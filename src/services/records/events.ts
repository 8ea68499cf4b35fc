import type { Columns } from './columns.js';
import type { CategoryRecord, LicenseRecord } from './types.js';

/** The parts of a dataset a reader goes through; ingest reports each as a stage. */
export type RecordSection = 'images' | 'annotations' | 'categories';

/** One step of a reader's output, in the order the writer must apply it. */
export type RecordEvent =
  /** The reader moved on to a section (a section may come more than once, or never). */
  | { kind: 'section'; name: RecordSection }
  | { kind: 'info'; info: Record<string, unknown> }
  | { kind: 'licenses'; licenses: LicenseRecord[] }
  | { kind: 'images'; columns: Columns }
  /**
   * `part`: which part of a source read in parallel parts produced them (0 or absent: the first);
   * a later part's rows are numbered within it until the counts of the parts before are known.
   */
  | { kind: 'annotations'; columns: Columns; part?: number }
  | { kind: 'categories'; categories: CategoryRecord[] }
  /**
   * The category ids given so far were provisional: every annotation whose category id is
   * `from[i]`, read before this event or after, has `to[i]`. For formats that name categories and
   * can number them only once every name is known (Pascal VOC: ids in sorted name order).
   */
  | { kind: 'renumber_categories'; from: number[]; to: number[] }
  /** The parts did not hold: every annotation of parts after the first is void, and the first part reads on. */
  | { kind: 'parts_dropped' };
