import type { Database, Param, Row, Transaction } from './connection.js';
import { sampleWhereClause, type SampleQueryFilter } from './samples.js';

/**
 * Tags of samples and annotations (docs/curation.md). Every change is one INSERT … SELECT or
 * DELETE over the rows a selection names, inside the caller's transaction: no row goes through
 * JavaScript, however many samples a filter matches.
 */

/** Which samples: image ids of the file, or a filter (`{}`: every sample). */
export type SampleSelection = { sampleIds: readonly number[] } | { filter: SampleQueryFilter };

/** Which annotations: positions (`ord`), or those of the samples a filter matches, in some label sets and categories. */
export type AnnotationSelection =
  | { ords: readonly number[] }
  | { filter: SampleQueryFilter; labelSets: readonly number[]; categoryIds?: readonly number[] };

/** SELECT of the selected samples' ords; `params` holds the dataset id first. */
function selectedSamples(sel: SampleSelection, params: Param[]): string {
  if ('sampleIds' in sel) {
    // An empty list binds no type.
    if (sel.sampleIds.length === 0) return 'SELECT ord FROM samples WHERE false';
    params.push(sel.sampleIds);
    return `SELECT ord FROM samples WHERE dataset_id = $1 AND list_contains($${params.length}::BIGINT[], image_id)`;
  }
  return `SELECT ord FROM samples WHERE dataset_id = $1${sampleWhereClause(sel.filter, params)}`;
}

function selectedAnnotations(sel: AnnotationSelection, params: Param[]): string {
  const bind = (v: Param) => (params.push(v), `$${params.length}`);
  if ('ords' in sel && sel.ords.length === 0) return 'SELECT ord FROM annotations WHERE false';
  if ('ords' in sel) return `SELECT ord FROM annotations WHERE dataset_id = $1 AND list_contains(${bind(sel.ords)}::INTEGER[], ord)`;
  if (sel.labelSets.length === 0 || sel.categoryIds?.length === 0) return 'SELECT ord FROM annotations WHERE false';
  const category = sel.categoryIds ? ` AND list_contains(${bind(sel.categoryIds)}::BIGINT[], category_id)` : '';
  // The samples' subquery first: its placeholders are numbered as it binds them.
  const samples = selectedSamples({ filter: sel.filter }, params);
  return `SELECT ord FROM annotations WHERE dataset_id = $1 AND list_contains(${bind(sel.labelSets)}::INTEGER[], label_set)${category}
    AND sample_ord IN (${samples})`;
}

/** Ids of `ids` the dataset has no sample for: how many, and the first few. */
export async function missingSampleIds(db: Database, datasetId: string, ids: readonly number[]): Promise<{ count: number; examples: number[] }> {
  return missing(db, `SELECT image_id AS id FROM samples WHERE dataset_id = $1 AND list_contains($2::BIGINT[], image_id)`, 'BIGINT', datasetId, ids);
}

/** Positions of `ords` the dataset has no annotation at. */
export async function missingAnnotationOrds(db: Database, datasetId: string, ords: readonly number[]): Promise<{ count: number; examples: number[] }> {
  return missing(db, `SELECT ord AS id FROM annotations WHERE dataset_id = $1 AND list_contains($2::INTEGER[], ord)`, 'INTEGER', datasetId, ords);
}

async function missing(db: Database, found: string, type: string, datasetId: string, ids: readonly number[]) {
  if (ids.length === 0) return { count: 0, examples: [] };
  const rows = await db.query(
    `SELECT count(*) OVER () AS n, id FROM (SELECT DISTINCT unnest($2::${type}[]) AS id EXCEPT ${found}) ORDER BY id LIMIT 5`,
    [datasetId, ids],
  );
  return { count: Number(rows[0]?.n ?? 0), examples: rows.map((r) => r.id as number) };
}

/**
 * Adds each tag to each selected sample that lacks it; answers how many samples gained a tag.
 * The new rows are gathered first (a temp table of the transaction's own connection), so the
 * count and the INSERT read the table once.
 */
export async function addSampleTags(tx: Transaction, datasetId: string, sel: SampleSelection, tags: readonly string[]): Promise<number> {
  return addTags(tx, 'sample_tags', 'sample_ord', datasetId, (params) => selectedSamples(sel, params), tags);
}

export async function addAnnotationTags(tx: Transaction, datasetId: string, sel: AnnotationSelection, tags: readonly string[]): Promise<number> {
  return addTags(tx, 'annotation_tags', 'ord', datasetId, (params) => selectedAnnotations(sel, params), tags);
}

/** Removes the tags from the selected samples; answers how many samples lost one. */
export async function removeSampleTags(tx: Transaction, datasetId: string, sel: SampleSelection, tags: readonly string[]): Promise<number> {
  return removeTags(tx, 'sample_tags', 'sample_ord', datasetId, (params) => selectedSamples(sel, params), tags);
}

export async function removeAnnotationTags(tx: Transaction, datasetId: string, sel: AnnotationSelection, tags: readonly string[]): Promise<number> {
  return removeTags(tx, 'annotation_tags', 'ord', datasetId, (params) => selectedAnnotations(sel, params), tags);
}

// Table and column names below come from the fixed pairs above, never from input.
type TagTable = 'sample_tags' | 'annotation_tags';

async function addTags(tx: Transaction, table: TagTable, key: string, datasetId: string, select: (params: Param[]) => string, tags: readonly string[]): Promise<number> {
  const params: Param[] = [datasetId];
  const selected = select(params);
  params.push(tags);
  await tx.run(
    `CREATE TEMP TABLE new_tags AS SELECT s.ord AS ${key}, t.tag FROM (${selected}) s, unnest($${params.length}::VARCHAR[]) t(tag)
     WHERE NOT EXISTS (SELECT 1 FROM ${table} x WHERE x.dataset_id = $1 AND x.${key} = s.ord AND x.tag = t.tag)`,
    params,
  );
  try {
    const changed = Number((await tx.query(`SELECT count(DISTINCT ${key}) AS n FROM new_tags`))[0]!.n);
    if (changed > 0) await tx.run(`INSERT INTO ${table} SELECT $1, ${key}, tag FROM new_tags`, [datasetId]);
    return changed;
  } finally {
    await tx.run('DROP TABLE new_tags');
  }
}

async function removeTags(tx: Transaction, table: TagTable, key: string, datasetId: string, select: (params: Param[]) => string, tags: readonly string[]): Promise<number> {
  const params: Param[] = [datasetId, tags];
  const where = `WHERE dataset_id = $1 AND list_contains($2::VARCHAR[], tag) AND ${key} IN (${select(params)})`;
  const changed = Number((await tx.query(`SELECT count(DISTINCT ${key}) AS n FROM ${table} ${where}`, params))[0]!.n);
  if (changed > 0) await tx.run(`DELETE FROM ${table} ${where}`, params);
  return changed;
}

/**
 * Tag counts of a dataset: samples per tag and annotations per tag, those of the samples a filter
 * matches when one is given. In tag order.
 */
export async function countTags(db: Database, datasetId: string, filter: SampleQueryFilter | null): Promise<{ tag: string; samples: number; annotations: number }[]> {
  const sampleParams: Param[] = [datasetId];
  const annotationParams: Param[] = [datasetId];
  const ofSamples = filter ? ` AND sample_ord IN (${selectedSamples({ filter }, sampleParams)})` : '';
  const ofAnnotations = filter
    ? ` AND ord IN (SELECT ord FROM annotations WHERE dataset_id = $1 AND sample_ord IN (${selectedSamples({ filter }, annotationParams)}))`
    : '';
  const [samples, annotations] = await Promise.all([
    db.query(`SELECT tag, count(*) AS n FROM sample_tags WHERE dataset_id = $1${ofSamples} GROUP BY tag`, sampleParams),
    db.query(`SELECT tag, count(*) AS n FROM annotation_tags WHERE dataset_id = $1${ofAnnotations} GROUP BY tag`, annotationParams),
  ]);
  const counts = new Map<string, { tag: string; samples: number; annotations: number }>();
  const entry = (tag: string) => counts.get(tag) ?? counts.set(tag, { tag, samples: 0, annotations: 0 }).get(tag)!;
  for (const r of samples) entry(r.tag as string).samples = Number(r.n);
  for (const r of annotations) entry(r.tag as string).annotations = Number(r.n);
  return [...counts.values()].sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

/** Tags of many samples (by ord) in one query, in tag order; the range bound lets zone maps skip. */
export async function tagsOfSamples(db: Database, datasetId: string, ords: readonly number[]): Promise<Map<number, string[]>> {
  return tagsOf(db, 'sample_tags', 'sample_ord', datasetId, ords);
}

export async function tagsOfAnnotations(db: Database, datasetId: string, ords: readonly number[]): Promise<Map<number, string[]>> {
  return tagsOf(db, 'annotation_tags', 'ord', datasetId, ords);
}

async function tagsOf(db: Database, table: TagTable, key: string, datasetId: string, ords: readonly number[]): Promise<Map<number, string[]>> {
  if (ords.length === 0) return new Map();
  const rows: Row[] = await db.query(
    `SELECT ${key} AS ord, list(tag ORDER BY tag) AS tags FROM ${table}
     WHERE dataset_id = $1 AND ${key} BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], ${key}) GROUP BY ${key}`,
    [datasetId, Math.min(...ords), Math.max(...ords), ords],
  );
  return new Map(rows.map((r) => [r.ord as number, r.tags as string[]]));
}
