import type { Database, Row, Transaction } from './connection.js';

const DATASET_COLUMNS = `id, name, format, source_path, image_dir, split, image_count, annotation_count, category_count,
  info::VARCHAR AS info, warnings::VARCHAR AS warnings, plugin_stats::VARCHAR AS plugin_stats, bytes, ingest_seconds,
  epoch_ms(created_at) AS created_ms, revision`;

const GET_DATASET = `SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = $1`;
const GET_DATASETS = `SELECT ${DATASET_COLUMNS} FROM datasets WHERE list_contains($1::VARCHAR[], id)`;
/** Newest first; (created_at, id) is unique, so it is also the keyset cursor. */
const LIST_DATASETS = `SELECT ${DATASET_COLUMNS} FROM datasets ORDER BY created_at DESC, id DESC`;
const COUNT_DATASETS = `SELECT count(*) AS n FROM datasets`;
const LIST_DATASET_IDS = `SELECT id FROM datasets`;
/**
 * Keyset windows over the newest-first order. The key is (created_ms, id): the order is taken on
 * the same millisecond value the cursor carries, so a page boundary never falls between two rows
 * that the cursor cannot tell apart. `$1`/`$2` are the key, the last value the limit.
 */
const PAGE_DATASETS_FIRST = `SELECT ${DATASET_COLUMNS} FROM datasets
  ORDER BY epoch_ms(created_at) DESC, id DESC LIMIT $1::INTEGER`;
const PAGE_DATASETS_OLDER = `SELECT ${DATASET_COLUMNS} FROM datasets
  WHERE epoch_ms(created_at) < $1::BIGINT OR (epoch_ms(created_at) = $1::BIGINT AND id < $2)
  ORDER BY epoch_ms(created_at) DESC, id DESC LIMIT $3::INTEGER`;
const PAGE_DATASETS_LAST = `SELECT ${DATASET_COLUMNS} FROM datasets
  ORDER BY epoch_ms(created_at) ASC, id ASC LIMIT $1::INTEGER`;
const PAGE_DATASETS_NEWER = `SELECT ${DATASET_COLUMNS} FROM datasets
  WHERE epoch_ms(created_at) > $1::BIGINT OR (epoch_ms(created_at) = $1::BIGINT AND id > $2)
  ORDER BY epoch_ms(created_at) ASC, id ASC LIMIT $3::INTEGER`;

const LIST_CATEGORIES = `SELECT dataset_id, category_id, name, supercategory, extra::VARCHAR AS extra, annotation_count, image_count
  FROM categories WHERE list_contains($1::VARCHAR[], dataset_id) ORDER BY dataset_id, category_id`;

const DELETE_STATEMENTS = [
  `DELETE FROM annotations WHERE dataset_id = $1`,
  `DELETE FROM annotation_shapes WHERE dataset_id = $1`,
  `DELETE FROM samples WHERE dataset_id = $1`,
  `DELETE FROM categories WHERE dataset_id = $1`,
  `DELETE FROM licenses WHERE dataset_id = $1`,
  `DELETE FROM label_sets WHERE dataset_id = $1`,
  ...['eval_detections', 'eval_ground_truth', 'eval_samples', 'eval_curves'].map(
    (t) => `DELETE FROM ${t} WHERE evaluation_id IN (SELECT id FROM evaluations WHERE dataset_id = $1)`,
  ),
  `DELETE FROM evaluations WHERE dataset_id = $1`,
  `DELETE FROM datasets WHERE id = $1`,
];

export async function getDatasetRow(db: Database, id: string): Promise<Row | undefined> {
  return (await db.query(GET_DATASET, [id]))[0];
}

export async function getDatasetRows(db: Database, ids: readonly string[]): Promise<Row[]> {
  return db.query(GET_DATASETS, [ids]);
}

export async function listDatasetIds(db: Database): Promise<string[]> {
  return (await db.query(LIST_DATASET_IDS)).map((r) => r.id as string);
}

export async function listDatasetRows(db: Database): Promise<Row[]> {
  return db.query(LIST_DATASETS);
}

export interface DatasetKey {
  createdMs: number;
  id: string;
}

export type DatasetWindow =
  | { kind: 'after'; after: DatasetKey | null; limit: number }
  | { kind: 'before'; before: DatasetKey | null; limit: number };

/**
 * Up to `limit + 1` datasets newest first, strictly after (older than) or before (newer than) a
 * key; the extra row tells the caller whether more exist.
 */
export async function pageDatasetRows(db: Database, w: DatasetWindow): Promise<Row[]> {
  const n = w.limit + 1;
  if (w.kind === 'after') {
    return w.after ? db.query(PAGE_DATASETS_OLDER, [w.after.createdMs, w.after.id, n]) : db.query(PAGE_DATASETS_FIRST, [n]);
  }
  const rows = w.before ? await db.query(PAGE_DATASETS_NEWER, [w.before.createdMs, w.before.id, n]) : await db.query(PAGE_DATASETS_LAST, [n]);
  return rows.reverse();
}

export async function countDatasetRows(db: Database): Promise<number> {
  return Number((await db.query(COUNT_DATASETS))[0]?.n ?? 0);
}

export async function listCategoryRows(db: Database, datasetIds: readonly string[]): Promise<Row[]> {
  return db.query(LIST_CATEGORIES, [datasetIds]);
}

/**
 * The counts stored beside a dataset's rows, computed again from its ground truth (label set 0):
 * after a change that added or removed samples or annotations. Run after the revision's bump.
 */
export const RECOUNT_STATEMENTS = [
  `UPDATE samples SET annotation_count = coalesce(c.n, 0)
   FROM (SELECT s.ord, count(a.ord) AS n FROM samples s
         LEFT JOIN annotations a ON a.dataset_id = s.dataset_id AND a.sample_ord = s.ord AND a.label_set = 0
         WHERE s.dataset_id = $1 GROUP BY s.ord) c
   WHERE samples.dataset_id = $1 AND samples.ord = c.ord AND samples.annotation_count <> coalesce(c.n, 0)`,
  `UPDATE categories SET annotation_count = coalesce(c.n, 0), image_count = coalesce(c.images, 0)
   FROM (SELECT k.category_id, count(a.ord) AS n, count(DISTINCT a.image_id) AS images FROM categories k
         LEFT JOIN annotations a ON a.dataset_id = k.dataset_id AND a.category_id = k.category_id AND a.label_set = 0
         WHERE k.dataset_id = $1 GROUP BY k.category_id) c
   WHERE categories.dataset_id = $1 AND categories.category_id = c.category_id`,
  `UPDATE datasets SET
     image_count = (SELECT count(*) FROM samples WHERE dataset_id = $1),
     annotation_count = (SELECT count(*) FROM annotations WHERE dataset_id = $1 AND label_set = 0),
     category_count = (SELECT count(*) FROM categories WHERE dataset_id = $1)
   WHERE id = $1`,
  `UPDATE label_sets SET annotation_count = (SELECT count(*) FROM annotations WHERE dataset_id = $1 AND label_set = label_sets.label_set)
   WHERE dataset_id = $1`,
  // The ground truth changed: evaluations computed before this revision are stale.
  `UPDATE label_sets SET revision = (SELECT revision FROM datasets WHERE id = $1) WHERE dataset_id = $1 AND label_set = 0`,
];

const DATASET_EXISTS = `SELECT count(*) AS n FROM datasets WHERE id = $1`;
const BUMP_REVISION = `UPDATE datasets SET revision = revision + 1 WHERE id = $1 RETURNING revision`;

/** A change of one dataset's rows in progress: its statements run in `tx`, nothing shows before commit. */
export interface DatasetChange {
  tx: Transaction;
  /** Bumps the revision (and with `recount`, the stored counts) in the same transaction, commits, and answers the new revision. */
  commit(options?: { recount?: boolean }): Promise<number>;
  /** Safe to call more than once, and after commit. */
  rollback(): Promise<void>;
}

/** Begins a change of a dataset's rows; null, with nothing begun, when the dataset does not exist. */
export async function beginDatasetChange(db: Database, id: string): Promise<DatasetChange | null> {
  const tx = await db.begin();
  try {
    const [found] = await tx.query(DATASET_EXISTS, [id]);
    if (Number(found?.n ?? 0) === 0) {
      await tx.rollback();
      return null;
    }
  } catch (e) {
    await tx.rollback().catch(() => undefined);
    throw e;
  }
  return {
    tx,
    async commit(options = {}) {
      try {
        const [bumped] = await tx.query(BUMP_REVISION, [id]);
        if (options.recount) for (const sql of RECOUNT_STATEMENTS) await tx.run(sql, [id]);
        await tx.commit();
        return bumped!.revision as number;
      } catch (e) {
        await tx.rollback().catch(() => undefined); // `e` says what went wrong
        throw e;
      }
    },
    rollback: () => tx.rollback(),
  };
}

/** Removes every row of a dataset in one transaction; returns false if it did not exist. */
export async function deleteDatasetRows(db: Database, id: string): Promise<boolean> {
  const conn = await db.connect();
  try {
    await conn.run('BEGIN TRANSACTION');
    const found = await conn.runAndReadAll(`SELECT count(*) AS n FROM datasets WHERE id = $1`, [id]);
    if (Number(found.getRowObjectsJS()[0]?.n ?? 0) === 0) {
      await conn.run('ROLLBACK');
      return false;
    }
    for (const sql of DELETE_STATEMENTS) await conn.run(sql, [id]);
    await conn.run('COMMIT');
    return true;
  } catch (e) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    conn.closeSync();
  }
}
