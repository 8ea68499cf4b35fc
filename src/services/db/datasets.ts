import type { Database, Row } from './connection.js';

const DATASET_COLUMNS = `id, name, format, source_path, image_dir, split, image_count, annotation_count, category_count,
  info::VARCHAR AS info, warnings::VARCHAR AS warnings, plugin_stats::VARCHAR AS plugin_stats, bytes, ingest_seconds,
  epoch_ms(created_at) AS created_ms`;

const GET_DATASET = `SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = $1`;
const GET_DATASETS = `SELECT ${DATASET_COLUMNS} FROM datasets WHERE list_contains($1::VARCHAR[], id)`;
/** Newest first; (created_at, id) is unique, so it is also the keyset cursor. */
const LIST_DATASETS = `SELECT ${DATASET_COLUMNS} FROM datasets ORDER BY created_at DESC, id DESC`;
const COUNT_DATASETS = `SELECT count(*) AS n FROM datasets`;

const LIST_CATEGORIES = `SELECT dataset_id, category_id, name, supercategory, extra::VARCHAR AS extra, annotation_count, image_count
  FROM categories WHERE list_contains($1::VARCHAR[], dataset_id) ORDER BY dataset_id, category_id`;

const DELETE_STATEMENTS = [
  `DELETE FROM annotations WHERE dataset_id = $1`,
  `DELETE FROM samples WHERE dataset_id = $1`,
  `DELETE FROM categories WHERE dataset_id = $1`,
  `DELETE FROM licenses WHERE dataset_id = $1`,
  `DELETE FROM datasets WHERE id = $1`,
];

export async function getDatasetRow(db: Database, id: string): Promise<Row | undefined> {
  return (await db.query(GET_DATASET, [id]))[0];
}

export async function getDatasetRows(db: Database, ids: readonly string[]): Promise<Row[]> {
  return db.query(GET_DATASETS, [ids]);
}

export async function listDatasetRows(db: Database): Promise<Row[]> {
  return db.query(LIST_DATASETS);
}

export async function countDatasetRows(db: Database): Promise<number> {
  return Number((await db.query(COUNT_DATASETS))[0]?.n ?? 0);
}

export async function listCategoryRows(db: Database, datasetIds: readonly string[]): Promise<Row[]> {
  return db.query(LIST_CATEGORIES, [datasetIds]);
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
