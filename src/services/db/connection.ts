import fs from 'node:fs';
import path from 'node:path';
import { DuckDBConnection, DuckDBInstance, listValue, type DuckDBValue } from '@duckdb/node-api';
import { DataVisorError } from '../errors.js';
import { SCHEMA_STATEMENTS, SCHEMA_VERSION } from './schema.js';

export type Row = Record<string, unknown>;
export type Param = string | number | boolean | null | readonly (string | number)[];
export type Params = readonly Param[];

export interface DatabaseOptions {
  /** Connections serving reads; each runs one query at a time. */
  readers?: number;
  /** DuckDB's memory_limit, e.g. '1GB'. */
  memoryLimit?: string;
}

/**
 * The one DuckDB instance of the process. Reads go through a small pool of connections; each
 * ingestion gets a connection of its own for its transaction, so readers never see a half dataset
 * (MVCC) and a killed process leaves only an uncommitted transaction, which DuckDB discards.
 */
export class Database {
  /** SQL statements run through `query` since open: tests use it to prove batching. */
  queryCount = 0;
  private next = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly readers: DuckDBConnection[],
  ) {}

  static async open(dbPath: string, options: DatabaseOptions = {}): Promise<Database> {
    fs.mkdirSync(path.dirname(dbPath), { recursive: true });
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(dbPath, options.memoryLimit ? { memory_limit: options.memoryLimit } : {});
    } catch (cause) {
      const msg = (cause as Error).message;
      if (/lock/i.test(msg)) {
        throw new DataVisorError(
          'UNAVAILABLE',
          `The database ${dbPath} is in use by another process (is \`datavisor serve\` running on it?)`,
          { cause },
        );
      }
      throw new DataVisorError('UNAVAILABLE', `Cannot open the database ${dbPath}: ${msg}`, { cause });
    }
    const setup = await instance.connect();
    try {
      for (const sql of SCHEMA_STATEMENTS) await setup.run(sql);
      const v = await setup.runAndReadAll('SELECT max(version) AS v FROM schema_version');
      const current = v.getRowObjectsJS()[0]?.v;
      if (current === null || current === undefined) {
        await setup.run('INSERT INTO schema_version VALUES ($1)', [SCHEMA_VERSION]);
      } else if (Number(current) > SCHEMA_VERSION) {
        throw new DataVisorError('UNAVAILABLE', `The database ${dbPath} has schema version ${current}, newer than this DataVisor (${SCHEMA_VERSION})`);
      }
    } finally {
      setup.closeSync();
    }
    const readers: DuckDBConnection[] = [];
    for (let i = 0; i < (options.readers ?? 3); i++) readers.push(await instance.connect());
    return new Database(dbPath, instance, readers);
  }

  /** Runs a read statement with bound values and returns plain rows (BIGINT as number). */
  async query<T extends Row = Row>(sql: string, params: Params = []): Promise<T[]> {
    this.assertOpen();
    this.queryCount++;
    const conn = this.readers[this.next++ % this.readers.length]!;
    const result = await conn.runAndReadAll(sql, params.map(toValue));
    return result.getRowObjectsJS().map(plainRow) as T[];
  }

  /** A connection of its own, for a transaction; the caller closes it. */
  async connect(): Promise<DuckDBConnection> {
    this.assertOpen();
    return this.instance.connect();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.readers) c.closeSync();
    this.instance.closeSync();
  }

  private assertOpen(): void {
    if (this.closed) throw new DataVisorError('UNAVAILABLE', 'The database is closed (the server is shutting down)');
  }
}

const toValue = (p: Param): DuckDBValue => (Array.isArray(p) ? listValue(p as (string | number)[]) : (p as DuckDBValue));

/**
 * Window queries fetch `limit + 1` rows, in ascending order whatever the direction: the extra row
 * only says more lie beyond the window, on its far side. Drops it and tells whether it was there.
 */
export function trimWindow<T>(rows: T[], limit: number, kind: string): { rows: T[]; hasMore: boolean } {
  const hasMore = rows.length > limit;
  if (hasMore) {
    if (kind === 'before') rows.shift();
    else rows.pop();
  }
  return { rows, hasMore };
}

/** A JSON column read as text (or null) → its value. */
export function jsonColumn<T>(v: unknown): T | null {
  return typeof v === 'string' ? (JSON.parse(v) as T) : null;
}

/** BIGINT arrives as bigint; COCO ids and counts fit in a double, and JSON cannot carry bigint. */
export function plainRow(row: Record<string, unknown>): Row {
  for (const k in row) {
    const v = row[k];
    if (typeof v === 'bigint') row[k] = Number(v);
  }
  return row;
}
