import type { Database, Param, Row } from './connection.js';
import { SAMPLE_COLUMNS, sampleWhereClause, type SampleQueryFilter } from './samples.js';

/**
 * Sample windows in a chosen order (docs/curation.md, "Sort and filter"). The order is total:
 * the key, then `ord`, ascending whatever the direction; samples without a key (no width, no
 * prediction of the run) come last in both directions. Keyset windows start after or before a
 * (key, ord) pair, so a page 100,000 deep reads no more than the first.
 *
 * A window is two statements: the page's (ord, key) pairs ranked over the key column alone, then
 * those samples' rows. Ranking whole rows costs DuckDB 6–10× more (a top-N carrying every column).
 */
export type SampleSortKey =
  | { kind: 'column'; column: 'file_name' | 'width' | 'height' | 'pixels' | 'annotation_count' }
  /** Ground-truth annotations of one category. */
  | { kind: 'category_count'; categoryId: number }
  /** The highest or lowest score among a prediction run's predictions on the sample. */
  | { kind: 'score'; labelSet: number; aggregate: 'max' | 'min' }
  | { kind: 'outcome'; evaluationId: string; outcome: 'tp' | 'fp' | 'fn' }
  /** A stable shuffle: shuffleHash(ord, seed). */
  | { kind: 'random'; seed: number };

export interface SampleOrder {
  key: SampleSortKey;
  descending: boolean;
}

/** A sort key value as a cursor carries it. */
export type SortKeyValue = string | number | null;

export interface SortPosition {
  ord: number;
  key: SortKeyValue;
}

export type SortedWindow =
  | { kind: 'offset'; offset: number; limit: number }
  | { kind: 'after'; after: SortPosition | null; limit: number }
  | { kind: 'before'; before: SortPosition | null; limit: number };

interface KeySource {
  /** The key's SQL expression over the samples row (and `k.sort_value` when joined). */
  expr: string;
  /** A LEFT JOIN providing `k.sort_value` per sample_ord, or ''. */
  join: string;
  nullable: boolean;
  /** The SQL type a cursor's key value is bound as. */
  type: 'VARCHAR' | 'INTEGER' | 'BIGINT' | 'DOUBLE';
  /** An integer column of samples: the page's rows are read within its range of keys (below). */
  prunes?: boolean;
  /** No two samples share a key: the keyset condition needs no tie-break on ord. */
  unique?: boolean;
}

/** The multiplier of shuffleHash's two rounds (a 32-bit avalanche hash, "lowbias32"-like). */
const MIX = 0x45d9f3b;
const U32 = 4294967295;

/**
 * The random order's key of a sample: a bijective 32-bit hash of (ord + seed × golden ratio) mod
 * 2^32. Written here in JS and in SQL below; plain integer arithmetic, so the same seed gives the
 * same order in every process and DuckDB version (DuckDB's own hash() is not promised stable).
 */
export function shuffleHash(ord: number, seed: number): number {
  let h = (ord + seedOffset(seed)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), MIX) >>> 0;
  h = Math.imul(h ^ (h >>> 16), MIX) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const seedOffset = (seed: number) => Math.imul(seed >>> 0, 0x9e3779b9) >>> 0;

function shuffleSql(seedParam: string): string {
  const round = (h: string) => `((xor(${h}, ${h} >> 16) * ${MIX}) & ${U32})`;
  const h2 = round(round(`((ord::BIGINT + ${seedParam}) & ${U32})`));
  return `xor(${h2}, ${h2} >> 16)`;
}

function keySource(key: SampleSortKey, bind: (v: Param, cast: string) => string): KeySource {
  switch (key.kind) {
    case 'column': {
      if (key.column === 'file_name') return { expr: 'file_name', join: '', nullable: false, type: 'VARCHAR' };
      if (key.column === 'annotation_count') return { expr: 'annotation_count', join: '', nullable: false, type: 'INTEGER', prunes: true };
      if (key.column === 'pixels') return { expr: '(width::BIGINT * height)', join: '', nullable: true, type: 'BIGINT' };
      return { expr: key.column, join: '', nullable: true, type: 'INTEGER', prunes: true };
    }
    case 'category_count':
      return {
        expr: 'coalesce(k.sort_value, 0)',
        join: `LEFT JOIN (SELECT sample_ord, count(*) AS sort_value FROM annotations
          WHERE dataset_id = $1 AND label_set = 0 AND category_id = ${bind(key.categoryId, 'BIGINT')} GROUP BY sample_ord) k ON k.sample_ord = ord`,
        nullable: false,
        type: 'BIGINT',
      };
    case 'score':
      return {
        expr: 'k.sort_value',
        join: `LEFT JOIN (SELECT sample_ord, ${key.aggregate === 'max' ? 'max' : 'min'}(score) AS sort_value FROM annotations
          WHERE dataset_id = $1 AND label_set = ${bind(key.labelSet, 'INTEGER')} GROUP BY sample_ord) k ON k.sample_ord = ord`,
        nullable: true,
        type: 'DOUBLE',
      };
    case 'outcome': {
      // The column name comes from the fixed union above, never from input.
      const column = { tp: 'tp', fp: 'fp', fn: 'fn' }[key.outcome];
      return {
        expr: 'coalesce(k.sort_value, 0)',
        join: `LEFT JOIN (SELECT sample_ord, ${column} AS sort_value FROM eval_samples WHERE evaluation_id = ${bind(key.evaluationId, 'VARCHAR')}) k ON k.sample_ord = ord`,
        nullable: false,
        type: 'INTEGER',
      };
    }
    case 'random':
      // A bijection of ords: keys never tie, and the hash is computed once per row, not thrice.
      return { expr: shuffleSql(bind(seedOffset(key.seed), 'BIGINT')), join: '', nullable: false, type: 'BIGINT', unique: true };
  }
}

/**
 * The keyset condition "after (or before) `at` in list order". The `key >= k AND (key > k OR …)`
 * form, rather than `key > k OR (key = k AND …)`, gives DuckDB a range on the key to push into
 * the scan (a page 100,000 deep by annotation count: 2.4 ms against 3.3 ms).
 */
function keysetCondition(src: KeySource, descending: boolean, side: 'after' | 'before', at: SortPosition, bind: (v: Param, cast: string) => string): string {
  if (at.key === null) {
    // Keyless samples form the tail of the list, in ord order.
    const o = bind(at.ord, 'INTEGER');
    return side === 'after' ? `(${src.expr} IS NULL AND ord > ${o})` : `(${src.expr} IS NOT NULL OR ord < ${o})`;
  }
  const k = bind(at.key, src.type);
  const forward = (side === 'after') !== descending;
  const [ge, gt] = forward ? ['>=', '>'] : ['<=', '<'];
  if (src.unique) return `${src.expr} ${gt} ${k}`;
  const o = bind(at.ord, 'INTEGER');
  const core = `(${src.expr} ${ge} ${k} AND (${src.expr} ${gt} ${k} OR ord ${side === 'after' ? '>' : '<'} ${o}))`;
  return side === 'after' && src.nullable ? `(${src.expr} IS NULL OR ${core})` : core;
}

/**
 * One window of samples in the order `order`, as rows in list order, each with its `sort_key`.
 * Fetches `limit + 1` rows so the caller learns whether more exist.
 */
export async function listSortedSampleRows(db: Database, datasetId: string, f: SampleQueryFilter, order: SampleOrder, w: SortedWindow): Promise<Row[]> {
  const params: Param[] = [datasetId];
  const bind = (v: Param, cast: string) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
  const src = keySource(order.key, bind);
  const where = sampleWhereClause(f, params);
  const at = w.kind === 'after' ? w.after : w.kind === 'before' ? w.before : null;
  const cond = at ? ` AND ${keysetCondition(src, order.descending, w.kind as 'after' | 'before', at, bind)}` : '';
  // Backward windows rank from the other end and are turned round below.
  const reversed = w.kind === 'before';
  const keyDir = order.descending !== reversed ? 'DESC' : 'ASC';
  const orderBy = `sort_key ${keyDir} NULLS ${reversed ? 'FIRST' : 'LAST'}, ord ${reversed ? 'DESC' : 'ASC'}`;
  const tail = ` LIMIT ${bind(w.limit + 1, 'INTEGER')}${w.kind === 'offset' ? ` OFFSET ${bind(w.offset, 'INTEGER')}` : ''}`;
  const keys = await db.query(
    `SELECT ord, ${src.expr} AS sort_key FROM samples ${src.join} WHERE dataset_id = $1${where}${cond} ORDER BY ${orderBy}${tail}`,
    params,
  );
  if (reversed) keys.reverse();
  if (keys.length === 0) return [];
  const ords = keys.map((r) => r.ord as number);
  const rowParams: Param[] = [datasetId, Math.min(...ords), Math.max(...ords), ords];
  let range = '';
  const values = keys.map((r) => r.sort_key as number | null);
  if (src.prunes && !values.includes(null)) {
    // A page's rows lie anywhere in the file; the range of their keys is a filter DuckDB applies
    // inside the scan, before the list test, and it skips the string columns of vectors that hold
    // none of them: 5.3 ms against 8.1 ms for the first page by annotation count on train2017.
    rowParams.push(Math.min(...(values as number[])), Math.max(...(values as number[])));
    range = ` AND ${src.expr} BETWEEN $5::${src.type} AND $6::${src.type}`;
  }
  const byOrd = new Map((await db.query(ROWS_BY_ORDS + range, rowParams)).map((r) => [r.ord as number, r]));
  return keys.map((k) => ({ ...byOrd.get(k.ord as number)!, sort_key: k.sort_key }));
}

const ROWS_BY_ORDS = `SELECT ${SAMPLE_COLUMNS} FROM samples
  WHERE dataset_id = $1 AND ord BETWEEN $2::INTEGER AND $3::INTEGER AND list_contains($4::INTEGER[], ord)`;
