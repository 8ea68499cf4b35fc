import { BadInputError, DataVisorError, NotFoundError } from '../errors.js';
import type { Warning } from '../records/types.js';
import { jsonColumn, type Database, type Row } from './connection.js';
import { RECOUNT_STATEMENTS } from './datasets.js';

/**
 * Moves a freshly written dataset (an ingest's rows under a provisional id, not committed) into an
 * existing one as new splits: `into` (docs/formats.md, "Several splits in one dataset"). Runs inside
 * the ingest's transaction, so a refusal or a failure leaves the target exactly as it was.
 */

/** Where the merged dataset's images are served from, and how its two halves' file names change. */
export interface MergePlacement {
  /** The target dataset. */
  into: string;
  /** The dataset's image folder after the merge: the common folder of both halves' folders. */
  imageDir: string;
  /** Put before the target's existing file names ('' or ending in '/'). */
  existingPrefix: string;
  /** Put before the added file names ('' or ending in '/'). */
  addedPrefix: string;
}

export interface MergeOutcome {
  /** The splits added, sorted. */
  splits: string[];
  /** Warnings of the addition as stored with the dataset (each message says which splits). */
  warnings: Warning[];
  revision: number;
}

/** The writer's statements, on its connection and transaction. */
export interface MergeSql {
  rows(sql: string, params?: (string | number | null)[]): Promise<Row[]>;
  exec(sql: string, params?: (string | number | null)[]): Promise<void>;
}

const EXAMPLES = 5;
const INT32_MAX = 2_147_483_647;

const TARGET = `SELECT image_dir, warnings::VARCHAR AS warnings FROM datasets WHERE id = $1`;
const ADDED_SPLITS = `SELECT split, count(*) AS n FROM samples WHERE dataset_id = $1 GROUP BY split ORDER BY split NULLS FIRST`;
export const splitConflictMessage = (into: string, list: string) =>
  `dataset ${into} already has split ${list}; a split is added once, never replaced: give another split name, or delete the dataset and ingest every split again`;

const TAKEN_SPLITS = `SELECT split, count(*) AS n FROM samples
  WHERE dataset_id = $1 AND split IN (SELECT split FROM samples WHERE dataset_id = $2) GROUP BY split ORDER BY split`;
const RENAMED_CATEGORIES = `SELECT n.category_id AS id, n.name AS added, o.name AS existing FROM categories n
  JOIN categories o ON o.dataset_id = $1 AND o.category_id = n.category_id
  WHERE n.dataset_id = $2 AND o.name <> n.name ORDER BY n.category_id LIMIT ${EXAMPLES}`;
const MOVED_CATEGORIES = `SELECT n.name, n.category_id AS added, o.category_id AS existing FROM categories n
  JOIN categories o ON o.dataset_id = $1 AND o.name = n.name AND o.category_id <> n.category_id
  WHERE n.dataset_id = $2 ORDER BY n.category_id LIMIT ${EXAMPLES}`;
/** Bases the added rows are numbered after, and the image ids both halves hold. */
const BASES = `SELECT
    (SELECT coalesce(max(ord), -1) + 1 FROM samples WHERE dataset_id = $1) AS sample_base,
    (SELECT coalesce(max(ord), -1) + 1 FROM annotations WHERE dataset_id = $1) AS annotation_base,
    (SELECT coalesce(max(image_id), -1) + 1 FROM samples WHERE dataset_id = $1) AS image_id_base,
    (SELECT coalesce(max(annotation_id), -1) + 1 FROM annotations WHERE dataset_id = $1 AND label_set = 0) AS annotation_id_base,
    (SELECT count(*) FROM samples WHERE dataset_id = $2) AS added_samples,
    (SELECT count(*) FROM annotations WHERE dataset_id = $2) AS added_annotations,
    (SELECT coalesce(min(annotation_id), 0) FROM annotations WHERE dataset_id = $2) AS added_min_annotation_id`;
const SHARED_IMAGE_IDS = `SELECT n.image_id AS x, count(*) OVER () AS n FROM samples n
  SEMI JOIN (SELECT image_id FROM samples WHERE dataset_id = $1) o ON o.image_id = n.image_id
  WHERE n.dataset_id = $2 ORDER BY n.ord LIMIT ${EXAMPLES}`;
const SHARED_ANNOTATION_IDS = `SELECT n.annotation_id AS x, count(*) OVER () AS n FROM annotations n
  SEMI JOIN (SELECT annotation_id FROM annotations WHERE dataset_id = $1 AND label_set = 0) o ON o.annotation_id = n.annotation_id
  WHERE n.dataset_id = $2 ORDER BY n.ord LIMIT ${EXAMPLES}`;

export async function mergeInto(sql: MergeSql, from: string, p: MergePlacement, addedWarnings: readonly Warning[]): Promise<MergeOutcome> {
  const { into } = p;
  const [target] = await sql.rows(TARGET, [into]);
  if (!target) throw new NotFoundError('dataset', into);

  const added = await sql.rows(ADDED_SPLITS, [from]);
  const unsplit = added.find((r) => r.split === null);
  if (unsplit) {
    throw new BadInputError(`into: ${unsplit.n} added image(s) have no split; give split (--split, e.g. "valid") so that they can be told apart from the dataset's own`);
  }
  const splits = added.map((r) => r.split as string);
  const taken = await sql.rows(TAKEN_SPLITS, [into, from]);
  if (taken.length > 0) {
    const list = taken.map((r) => `"${r.split}" (${r.n} images)`).join(', ');
    throw new DataVisorError('CONFLICT', splitConflictMessage(into, list));
  }

  const renamed = await sql.rows(RENAMED_CATEGORIES, [into, from]);
  if (renamed.length > 0) {
    const list = renamed.map((r) => `${r.id} is "${r.existing}" in the dataset but "${r.added}" in the added file`).join('; ');
    throw new BadInputError(`into: category ids must name the same category in every split: ${list}; make the files' categories agree (same id, same name)`);
  }
  const moved = await sql.rows(MOVED_CATEGORIES, [into, from]);
  if (moved.length > 0) {
    const list = moved.map((r) => `"${r.name}" is id ${r.existing} in the dataset but ${r.added} in the added file`).join('; ');
    throw new BadInputError(`into: a category name must have one id in every split: ${list}; make the files' categories agree (same id, same name)`);
  }

  const [b] = await sql.rows(BASES, [into, from]);
  const n = (k: string) => Number(b![k]);
  if (n('sample_base') + n('added_samples') > INT32_MAX || n('annotation_base') + n('added_annotations') > INT32_MAX) {
    throw new BadInputError(`into: dataset ${into} would hold more than 2^31 samples or annotations`);
  }
  const warnings: Warning[] = [];
  const sharedImages = await sql.rows(SHARED_IMAGE_IDS, [into, from]);
  const renumberImages = sharedImages.length > 0;
  if (renumberImages) {
    warnings.push({
      code: 'image_ids_renumbered',
      count: n('added_samples'),
      message: `${sharedImages[0]!.n} image id(s) of the added file are already the dataset's: its ${n('added_samples')} images were given ids ${n('image_id_base')} and up in file order; each keeps the file's id in metadata.file_image_id (predictions of this split: import them with its split to map their image ids)`,
      examples: sharedImages.map((r) => r.x as number),
    });
  }
  const sharedAnnotations = await sql.rows(SHARED_ANNOTATION_IDS, [into, from]);
  const renumberAnnotations = sharedAnnotations.length > 0;
  const annotationIdShift = n('annotation_id_base') - n('added_min_annotation_id');
  if (renumberAnnotations) {
    warnings.push({
      code: 'annotation_ids_renumbered',
      count: n('added_annotations'),
      message: `${sharedAnnotations[0]!.n} annotation id(s) of the added file are already the dataset's: its annotation ids were shifted by ${annotationIdShift}; each keeps the file's id in extra.file_annotation_id`,
      examples: sharedAnnotations.map((r) => r.x as number),
    });
  }

  if (p.existingPrefix !== '') {
    await sql.exec(`UPDATE samples SET file_name = $2 || file_name WHERE dataset_id = $1`, [into, p.existingPrefix]);
  }
  const sampleBase = n('sample_base');
  const imageIdBase = n('image_id_base');
  const annotationBase = n('annotation_base');
  // The new image id of an added sample is the id base plus its position in the added file.
  await sql.exec(
    `UPDATE samples SET dataset_id = $1, ord = ord + $3, file_name = $4 || file_name
       ${renumberImages ? `, image_id = $5 + ord, metadata = json_merge_patch(coalesce(metadata, '{}'), json_object('file_image_id', image_id))::VARCHAR` : ''}
     WHERE dataset_id = $2`,
    renumberImages ? [into, from, sampleBase, p.addedPrefix, imageIdBase] : [into, from, sampleBase, p.addedPrefix],
  );
  const annotationSets = [`dataset_id = $1`, `sample_ord = sample_ord + $3`, `ord = ord + $4`];
  const annotationParams: (string | number)[] = [into, from, sampleBase, annotationBase];
  if (renumberImages) {
    annotationParams.push(imageIdBase);
    annotationSets.push(`image_id = $${annotationParams.length} + sample_ord`);
  }
  if (renumberAnnotations) {
    annotationParams.push(annotationIdShift);
    const shift = `$${annotationParams.length}`;
    annotationSets.push(`annotation_id = annotation_id + ${shift}`);
    annotationSets.push(`extra = json_merge_patch(coalesce(extra, '{}'), json_object('file_annotation_id', annotation_id))::VARCHAR`);
  }
  await sql.exec(`UPDATE annotations SET ${annotationSets.join(', ')} WHERE dataset_id = $2`, annotationParams);
  await sql.exec(`UPDATE annotation_shapes SET dataset_id = $1, ord = ord + $3 WHERE dataset_id = $2`, [into, from, annotationBase]);

  // Categories and licenses the dataset has are kept as they are; new ones join it.
  await sql.exec(`DELETE FROM categories WHERE dataset_id = $2 AND category_id IN (SELECT category_id FROM categories WHERE dataset_id = $1)`, [into, from]);
  await sql.exec(`UPDATE categories SET dataset_id = $1 WHERE dataset_id = $2`, [into, from]);
  await sql.exec(`DELETE FROM licenses WHERE dataset_id = $2 AND license_id IN (SELECT license_id FROM licenses WHERE dataset_id = $1)`, [into, from]);
  await sql.exec(`UPDATE licenses SET dataset_id = $1 WHERE dataset_id = $2`, [into, from]);

  const label = splits.map((s) => JSON.stringify(s)).join(', ');
  const stored = [...warnings, ...addedWarnings].map((w) => ({ ...w, message: `split ${label} (added): ${w.message}` }));
  const all = [...(jsonColumn<Warning[]>(target.warnings) ?? []), ...stored];
  // Samples now have several splits: the dataset's own `split` (one split for all) no longer holds.
  await sql.exec(`UPDATE datasets SET image_dir = $2, warnings = $3::JSON, split = NULL WHERE id = $1`, [into, p.imageDir, JSON.stringify(all)]);
  const [bumped] = await sql.rows(`UPDATE datasets SET revision = revision + 1 WHERE id = $1 RETURNING revision`, [into]);
  for (const s of RECOUNT_STATEMENTS) await sql.exec(s, [into]);
  return { splits, warnings: [...warnings, ...addedWarnings], revision: Number(bumped!.revision) };
}

/** Images of a dataset in a split: an addition of a split the dataset has is refused before anything is read. */
export async function countSplitImages(db: Database, datasetId: string, split: string): Promise<number> {
  const [r] = await db.query(`SELECT count(*) AS n FROM samples WHERE dataset_id = $1 AND split = $2`, [datasetId, split]);
  return Number(r?.n ?? 0);
}
