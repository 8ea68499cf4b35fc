import { jsonColumn, type Database, type Row, type Transaction } from './connection.js';

/** Saved views (docs/curation.md): a named filter and sort of one dataset. */
export interface ViewRow {
  id: string;
  datasetId: string;
  name: string;
  filter: Record<string, unknown>;
  sort: Record<string, unknown> | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a view stores, as JSON. */
interface StoredQuery {
  filter: object;
  sort: object | null;
}

const VIEW_COLUMNS = `id, dataset_id, name, filter::VARCHAR AS filter, sort::VARCHAR AS sort,
  epoch_ms(created_at) AS created_ms, epoch_ms(updated_at) AS updated_ms`;

const GET_VIEW = `SELECT ${VIEW_COLUMNS} FROM views WHERE id = $1`;
/** Oldest first; the id breaks ties of one millisecond. */
const LIST_VIEWS_OF = `SELECT ${VIEW_COLUMNS} FROM views WHERE list_contains($1::VARCHAR[], dataset_id) ORDER BY created_at, id`;
const VIEW_NAMED = `SELECT id FROM views WHERE dataset_id = $1 AND name = $2 AND id <> $3`;
const INSERT_VIEW = `INSERT INTO views VALUES ($1, $2, $3, $4::JSON, $5::JSON, now(), now())`;
const UPDATE_VIEW = `UPDATE views SET name = $2, filter = $3::JSON, sort = $4::JSON, updated_at = now() WHERE id = $1`;
const DELETE_VIEW = `DELETE FROM views WHERE id = $1`;

function toView(r: Row): ViewRow {
  return {
    id: r.id as string,
    datasetId: r.dataset_id as string,
    name: r.name as string,
    filter: jsonColumn<Record<string, unknown>>(r.filter) ?? {},
    sort: jsonColumn<Record<string, unknown>>(r.sort),
    createdAt: new Date(r.created_ms as number),
    updatedAt: new Date(r.updated_ms as number),
  };
}

export async function getViewRow(db: Database | Transaction, id: string): Promise<ViewRow | undefined> {
  const [row] = await db.query(GET_VIEW, [id]);
  return row ? toView(row) : undefined;
}

/** Views of many datasets in one query, per dataset in the order given. */
export async function listViewRowsOf(db: Database, datasetIds: readonly string[]): Promise<ViewRow[][]> {
  const byDataset = new Map<string, ViewRow[]>(datasetIds.map((id) => [id, []]));
  for (const r of await db.query(LIST_VIEWS_OF, [datasetIds])) byDataset.get(r.dataset_id as string)?.push(toView(r));
  return datasetIds.map((id) => byDataset.get(id)!);
}

/** Whether another view of the dataset (not `exceptId`) has this name: read in the writing transaction. */
export async function viewNameTaken(tx: Transaction, datasetId: string, name: string, exceptId = ''): Promise<boolean> {
  return (await tx.query(VIEW_NAMED, [datasetId, name, exceptId])).length > 0;
}

export async function insertViewRow(tx: Transaction, v: Pick<ViewRow, 'id' | 'datasetId' | 'name'> & StoredQuery): Promise<void> {
  await tx.run(INSERT_VIEW, [v.id, v.datasetId, v.name, JSON.stringify(v.filter), v.sort === null ? null : JSON.stringify(v.sort)]);
}

export async function updateViewRow(tx: Transaction, v: Pick<ViewRow, 'id' | 'name'> & StoredQuery): Promise<void> {
  await tx.run(UPDATE_VIEW, [v.id, v.name, JSON.stringify(v.filter), v.sort === null ? null : JSON.stringify(v.sort)]);
}

export async function deleteViewRow(tx: Transaction, id: string): Promise<void> {
  await tx.run(DELETE_VIEW, [id]);
}
