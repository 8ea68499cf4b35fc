/**
 * Flags a reader sets on a row for what is that row's problem alone: fields that only inform,
 * written in another type than the format defines (docs/ingestion.md, "Field by field"), and file
 * names whose image can never be read. The writer counts each flag into a warning. One byte per
 * row, staged as UTINYINT.
 */
export const IMAGE_QUIRKS = {
  /** `license` is not a license id (TACO's "CC"): kept in metadata.license. */
  licenseNotAnId: 1,
  /** `width` / `height` given as text holding a positive integer: read as that number. */
  sizeAsText: 2,
  /** `width` / `height` not a positive integer: kept in metadata, the image has no size. */
  invalidSize: 4,
  /** `file_name` leads out of the image folder (absolute, `..`): the sample is kept, its image refused. */
  fileNameOutsideFolder: 8,
} as const;

export const ANNOTATION_QUIRKS = {
  /** `area`, `iscrowd`, `score` or `num_keypoints` of another type: kept in extra, the field left empty. */
  keptInExtra: 1,
  /** A `bbox` holding NaN, Infinity or null: stored as no box. */
  bboxNotFinite: 2,
  /** An `area` of NaN or Infinity: stored as null. */
  areaNotFinite: 4,
} as const;
