import type { Warning } from '../../../records/types.js';

const EXAMPLES = 5;

/** The quirks only the YOLO reader sees, by code, in a fixed order (docs/formats.md lists them). */
export const YOLO_WARNINGS = {
  nc_mismatch: '`nc` differs from the number of `names`; the names were used',
  dataset_path_not_found: "the YAML's `path` does not exist; its split paths were resolved from the YAML's own folder",
  split_folder_missing: 'splits named in the YAML do not exist (nothing was read for them)',
  label_files_without_image: 'label files have no image of the same name (not ingested)',
  image_headers_unreadable: 'images whose header could not be read: no width or height, so their boxes could not be converted to pixels (kept without a box)',
  unknown_class_ids: 'label lines use a class id that is not in `names`; their annotations were kept under a category `class_<id>`',
  coordinates_outside_unit_range: 'label lines have normalised coordinates outside [0, 1]; they were kept as they are, not clipped',
  empty_label_lines: 'label files have empty lines between their lines (skipped)',
  unreadable_label_lines: 'label lines could not be read (wrong number of fields, or a field that is not a number); skipped',
} as const;

export type YoloWarningCode = keyof typeof YOLO_WARNINGS;

export type TallyEntry = [YoloWarningCode, number, (string | number)[]];

/** Counts each warning and keeps its first few examples. */
export class WarningTally {
  private readonly counts = new Map<YoloWarningCode, { count: number; examples: (string | number)[] }>();
  private readonly messages = new Map<YoloWarningCode, string>();

  add(code: YoloWarningCode, example: string | number, count = 1): void {
    let w = this.counts.get(code);
    if (!w) this.counts.set(code, (w = { count: 0, examples: [] }));
    w.count += count;
    if (w.examples.length < EXAMPLES) w.examples.push(example);
  }

  /** Replaces the standard message (e.g. to give the numbers of `nc_mismatch`). */
  setMessage(code: YoloWarningCode, message: string): void {
    this.messages.set(code, message);
  }

  /** Adds another tally's counts and examples (the read thread's, at the end). */
  merge(entries: TallyEntry[]): void {
    for (const [code, count, examples] of entries) {
      let w = this.counts.get(code);
      if (!w) this.counts.set(code, (w = { count: 0, examples: [] }));
      w.count += count;
      for (const e of examples) if (w.examples.length < EXAMPLES) w.examples.push(e);
    }
  }

  /** Plain data, to cross threads. */
  entries(): TallyEntry[] {
    return [...this.counts].map(([code, w]) => [code, w.count, w.examples]);
  }

  count(code: YoloWarningCode): number {
    return this.counts.get(code)?.count ?? 0;
  }

  toWarnings(): Warning[] {
    const out: Warning[] = [];
    for (const code of Object.keys(YOLO_WARNINGS) as YoloWarningCode[]) {
      const w = this.counts.get(code);
      if (w) out.push({ code, count: w.count, message: this.messages.get(code) ?? YOLO_WARNINGS[code], examples: w.examples });
    }
    return out;
  }
}
