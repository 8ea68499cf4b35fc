import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import duckdb from '@duckdb/node-bindings';
import {
  DuckDBConnection,
  DuckDBTypeId,
  DuckDBInstance,
  JSDuckDBValueConverter,
  listValue,
  type DuckDBDataChunk,
  type DuckDBMaterializedResult,
  type DuckDBPreparedStatement,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { DataVisorError } from '../errors.js';
import { ChunkedAppender } from './chunked-appender.js';
import { IngestResources } from './ingest-resources.js';
import { MIGRATIONS, SCHEMA_STATEMENTS, SCHEMA_VERSION } from './schema.js';

export type Row = Record<string, unknown>;
export type Param = string | number | boolean | null | readonly (string | number)[];
export type Params = readonly Param[];

/** Statements inside one transaction (Database.begin, Database.transaction). */
export interface Transaction {
  run(sql: string, params?: Params): Promise<void>;
  query(sql: string, params?: Params): Promise<Row[]>;
  /** Appends rows to a table inside the transaction (close it before the SQL that reads them). */
  appender(table: string): Promise<ChunkedAppender>;
}

/** Reads of one state of the database (Database.snapshot). */
export interface Snapshot {
  query(sql: string, params?: Params): Promise<Row[]>;
  /** A large result, a chunk (up to 2,048 rows) at a time; run one stream at a time, to its end or return(). */
  stream(sql: string, params?: Params): AsyncGenerator<Row[]>;
  /** The same, each chunk read column by column (ColumnChunk). */
  chunks(sql: string, params?: Params): AsyncGenerator<ColumnChunk>;
  close(): void;
}

export interface OpenTransaction extends Transaction {
  commit(): Promise<void>;
  /** Safe to call more than once, and after commit (then it does nothing). */
  rollback(): Promise<void>;
}

export interface DatabaseOptions {
  /** Connections serving reads; each runs one query at a time. */
  readers?: number;
  /** DuckDB's memory_limit, e.g. '1GB'. */
  memoryLimit?: string;
  /** Its value while ingests only append rows (ingest-resources.ts); needs memoryLimit. */
  ingestMemoryLimit?: string | null;
  /** DuckDB threads an aggregation runs on (IngestResources.analyse); null or absent: DuckDB's default, the cores. */
  aggregateThreads?: number | null;
}

/** Brings the schema from `version` to the next, all or nothing. */
async function migrate(conn: DuckDBConnection, dbPath: string, version: number): Promise<void> {
  const steps = MIGRATIONS[version];
  if (!steps) throw new DataVisorError('UNAVAILABLE', `The database ${dbPath} has schema version ${version}, which this DataVisor cannot upgrade`);
  await conn.run('BEGIN TRANSACTION');
  try {
    for (const sql of steps) await conn.run(sql);
    await conn.run('INSERT INTO schema_version VALUES ($1)', [version + 1]);
    await conn.run('COMMIT');
  } catch (cause) {
    await conn.run('ROLLBACK').catch(() => undefined); // the cause below is what went wrong
    throw new DataVisorError('UNAVAILABLE', `Cannot upgrade the database ${dbPath} from schema version ${version}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Scratch tables a process left when it died: an import's committed staging tables
 * (db/predictions.ts); an ingest's live in its transaction and die with it. Run at open, when no
 * import of this process can be running.
 */
async function dropStagingTables(conn: DuckDBConnection): Promise<void> {
  const left = await conn.runAndReadAll(`SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, 'staging_')`);
  for (const [name] of left.getRows()) await conn.run(`DROP TABLE IF EXISTS "${String(name).replaceAll('"', '""')}"`);
}

/**
 * The one DuckDB instance of the process. Reads go through a small pool of connections; each
 * ingestion gets a connection of its own for its transaction, so readers never see a half dataset
 * (MVCC) and a killed process leaves only an uncommitted transaction, which DuckDB discards.
 */
export class Database {
  /** SQL statements run through `query` since open: tests use it to prove batching. */
  queryCount = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly idle: Reader[];
  /** Statements running on the readers now, which close() interrupts and waits for. */
  private readonly running = new Set<Promise<Row[]>>();
  /** Connections of connect() not closed yet (an ingest's, a delete's). */
  private readonly lent = new Set<DuckDBConnection>();
  /** Queries waiting for a reader, first come first served. */
  private readonly waiting: { resolve: (reader: Reader) => void; reject: (e: Error) => void }[] = [];

  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly readers: Reader[],
    /** DuckDB's memory limit and threads as ingests move through their phases. */
    readonly ingestResources: IngestResources,
  ) {
    this.idle = [...readers];
  }

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
      } else {
        for (let v = Number(current); v < SCHEMA_VERSION; v++) await migrate(setup, dbPath, v);
      }
      await dropStagingTables(setup);
    } catch (e) {
      // Let go of the file, so that the same process can open it again (after an upgrade, say).
      setup.closeSync();
      instance.closeSync();
      throw e;
    }
    setup.closeSync();
    const readers: Reader[] = [];
    const conn = await instance.connect();
    try {
      for (let i = 0; i < (options.readers ?? 3); i++) readers.push(new Reader(await instance.connect()));
      const { memoryLimit: full, ingestMemoryLimit: ingest } = options;
      // DuckDB's default thread count (the cores) is what ingests get; no ingest runs yet.
      const setting = async (name: string) => (await conn.runAndReadAll(`SELECT value FROM duckdb_settings() WHERE name = $1`, [name])).getRows()[0]?.[0];
      const threads = Number(await setting('threads')) || availableParallelism();
      const [task, bulk] = [await setting('allocator_flush_threshold'), await setting('allocator_bulk_deallocation_flush_threshold')];
      // A DuckDB without these settings: its allocator is left as it is.
      const flush = typeof task === 'string' && typeof bulk === 'string' ? { task, bulk } : null;
      const resources = new IngestResources(conn, full && ingest ? { full, ingest } : null, { ingest: threads, idle: 1, analysis: options.aggregateThreads ?? threads }, flush);
      await resources.move(null, null);
      return new Database(dbPath, instance, readers, resources);
    } catch (e) {
      for (const r of readers) r.conn.closeSync();
      conn.closeSync();
      instance.closeSync();
      throw e;
    }
  }

  /**
   * Runs a read statement with bound values and returns plain rows (BIGINT as number). Each reader
   * runs one statement at a time (a prepared statement's bound values belong to one run); the rest
   * wait for the next free reader.
   */
  async query<T extends Row = Row>(sql: string, params: Params = []): Promise<T[]> {
    this.assertOpen();
    this.queryCount++;
    const reader = this.idle.pop() ?? (await new Promise<Reader>((resolve, reject) => this.waiting.push({ resolve, reject })));
    const run = reader.run(sql, params);
    this.running.add(run);
    try {
      return (await run) as T[];
    } catch (e) {
      // Only shutdown interrupts statements (stop()).
      if (/^INTERRUPT/.test((e as Error)?.message ?? '')) throw new DataVisorError('UNAVAILABLE', 'The query was interrupted: the server is shutting down', { cause: e });
      throw e;
    } finally {
      this.running.delete(run);
      const next = this.waiting.shift();
      if (next) next.resolve(reader);
      else this.idle.push(reader);
    }
  }

  /**
   * A transaction on a connection of its own, for a change that yields between its steps (an
   * import reporting progress): `commit` or `rollback` ends it and lets go of the connection.
   * A process that dies first leaves nothing (DuckDB discards an uncommitted transaction).
   */
  async begin(): Promise<OpenTransaction> {
    const conn = await this.connect();
    let open = true;
    const appenders: ChunkedAppender[] = [];
    const end = async (sql: 'COMMIT' | 'ROLLBACK') => {
      if (!open) return;
      open = false;
      try {
        if (sql === 'ROLLBACK') for (const a of appenders) a.discard();
        await conn.run(sql);
      } finally {
        conn.closeSync();
      }
    };
    try {
      await conn.run('BEGIN TRANSACTION');
    } catch (e) {
      conn.closeSync();
      throw e;
    }
    return {
      run: async (sql, params = []) => void (await conn.run(sql, params.map(toValue))),
      query: async (sql, params = []) => rowsOf(await conn.run(sql, params.map(toValue))),
      appender: async (table) => {
        const a = new ChunkedAppender(await conn.createAppender(table));
        appenders.push(a);
        return a;
      },
      commit: () => end('COMMIT'),
      rollback: () => end('ROLLBACK'),
    };
  }

  /**
   * A read whose result may be large, chunk by chunk (2,048 rows at most each), on a connection of
   * its own: memory holds one chunk, not the result. Columns come out whole (ColumnChunk), not as
   * row objects: an evaluation reads ~130K rows per val2017-scale run, and building a row object
   * per row through the library's getters (whose NULL test is BigInt arithmetic) was a third of
   * its main-thread time. Leaving the loop early closes the connection.
   */
  async *stream(sql: string, params: Params = []): AsyncGenerator<ColumnChunk> {
    this.queryCount++;
    const conn = await this.connect();
    try {
      for await (const { chunk, types } of resultChunks(conn, sql, params)) yield new ColumnChunk(chunk, types);
    } finally {
      conn.closeSync();
    }
  }

  /**
   * Several large reads that see one state of the database: a read transaction on a connection of
   * its own (DuckDB's MVCC keeps a change that commits meanwhile out of it), each result streamed
   * chunk by chunk as by stream(). `close` ends it; safe to call more than once.
   */
  async snapshot(): Promise<Snapshot> {
    const conn = await this.connect();
    let open = true;
    try {
      await conn.run('BEGIN TRANSACTION');
    } catch (e) {
      conn.closeSync();
      throw e;
    }
    const self = this;
    return {
      async query(sql, params = []) {
        self.queryCount++;
        return rowsOf(await conn.run(sql, params.map(toValue)));
      },
      async *stream(sql, params = []) {
        self.queryCount++;
        for await (const { chunk, names, types } of resultChunks(conn, sql, params)) yield rowsOfChunk(chunk, names, types);
      },
      async *chunks(sql, params = []) {
        self.queryCount++;
        for await (const { chunk, types } of resultChunks(conn, sql, params)) yield new ColumnChunk(chunk, types);
      },
      close() {
        if (!open) return;
        open = false;
        // A read-only transaction: closing the connection ends it, nothing to commit.
        conn.closeSync();
      },
    };
  }

  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const tx = await this.begin();
    try {
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (e) {
      await tx.rollback().catch(() => undefined); // `e` is what went wrong
      throw e;
    }
  }

  /** A connection of its own, for a transaction; the caller closes it. */
  async connect(): Promise<DuckDBConnection> {
    this.assertOpen();
    const conn = await this.instance.connect();
    // Known until its owner closes it (closeSync calls disconnectSync), so that stop() and close()
    // reach the statement it runs.
    this.lent.add(conn);
    const disconnect = conn.disconnectSync.bind(conn);
    conn.disconnectSync = () => {
      this.lent.delete(conn);
      disconnect();
    };
    return conn;
  }

  /**
   * Shutdown's first step: new queries and connections are refused (UNAVAILABLE), and the
   * statements running now, on every connection, fail with DuckDB's INTERRUPT error within
   * milliseconds instead of running to their end (a heavy query, an ingest's final SQL). Lent
   * connections stay usable, so an ingest can roll back. Interrupting an idle connection does nothing.
   */
  stop(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(closedError());
    this.interruptAll();
  }

  /**
   * Stops (stop()), then closes DuckDB once nothing runs on it. A connection or instance closed
   * under a running statement leaves that statement's callback pending forever, and the process
   * can then never exit: process.exit() itself waits for it (a server outlived its SIGTERM by 20
   * minutes). So running statements are interrupted and waited for first.
   */
  close(): Promise<void> {
    this.closing ??= this.closeWhenIdle();
    return this.closing;
  }

  private async closeWhenIdle(): Promise<void> {
    this.stop();
    await Promise.allSettled([...this.running, this.ingestResources.idle()]);
    // Owners of lent connections roll back and close them once their statement fails. Polled, and
    // interrupted again each time: an ingest between two statements starts its next one unaware.
    for (const until = performance.now() + LENT_CLOSE_WAIT_MS; this.lent.size > 0 && performance.now() < until; ) {
      await new Promise((r) => setTimeout(r, 25));
      for (const c of this.lent) c.interrupt();
    }
    for (const r of this.readers) r.conn.closeSync();
    this.ingestResources.close();
    if (this.lent.size > 0) {
      // Closing the instance now would hang the process's exit; left open, exiting discards the transaction.
      throw new DataVisorError('UNAVAILABLE', `DuckDB was left open: ${this.lent.size} connection(s) of an ingest or a delete still ran a statement ${LENT_CLOSE_WAIT_MS} ms after being interrupted`);
    }
    this.instance.closeSync();
  }

  private interruptAll(): void {
    for (const r of this.readers) r.conn.interrupt();
    for (const c of this.lent) c.interrupt();
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }
}

/** How long close() waits for lent connections to be closed by their owners. */
const LENT_CLOSE_WAIT_MS = 2000;

const closedError = () => new DataVisorError('UNAVAILABLE', 'The database is closed (the server is shutting down)');

const toValue = (p: Param): DuckDBValue => (Array.isArray(p) ? listValue(p as (string | number)[]) : (p as DuckDBValue));

/** Prepared statements kept per reader: the fixed SQL of the services, and filter combinations. */
const MAX_PREPARED = 64;

/**
 * One read connection and its prepared statements. Parsing and planning a statement costs about
 * as much as running a page query, so each distinct SQL text is prepared once (least recently
 * used ones are dropped past MAX_PREPARED).
 */
class Reader {
  private readonly prepared = new Map<string, DuckDBPreparedStatement>();

  constructor(readonly conn: DuckDBConnection) {}

  async run(sql: string, params: Params): Promise<Row[]> {
    let statement = this.prepared.get(sql);
    if (statement) {
      this.prepared.delete(sql); // re-inserted below: Map order is the recency order
    } else {
      statement = await this.conn.prepare(sql);
      if (this.prepared.size >= MAX_PREPARED) {
        const [oldest, dropped] = this.prepared.entries().next().value!;
        this.prepared.delete(oldest);
        dropped.destroySync();
      }
    }
    this.prepared.set(sql, statement);
    statement.clearBindings();
    if (params.length > 0) statement.bind(params.map(toValue));
    return rowsOf(await statement.run());
  }
}

/** One chunk of a streamed result, read column by column. */
export class ColumnChunk {
  readonly rowCount: number;

  constructor(
    private readonly chunk: DuckDBDataChunk,
    private readonly types: readonly DuckDBType[],
  ) {
    this.rowCount = chunk.rowCount;
  }

  /** A DOUBLE column (cast in the SQL) as a copy of its values, NaN for NULL. */
  numbers(column: number): Float64Array {
    if (this.types[column]!.typeId !== DuckDBTypeId.DOUBLE) throw new DataVisorError('INTERNAL', `column ${column} is not DOUBLE`);
    const n = this.rowCount;
    const vector = duckdb.data_chunk_get_vector(this.chunk.chunk, column);
    const data = duckdb.vector_get_data(vector, n * 8);
    const out = new Float64Array(data.buffer, data.byteOffset, n).slice();
    // One bit per row (little-endian 64-bit words, so byte i >> 3 holds row i); null: all valid.
    const valid = duckdb.vector_get_validity(vector, Math.ceil(n / 64) * 8);
    if (valid) for (let i = 0; i < n; i++) if (((valid[i >>> 3]! >>> (i & 7)) & 1) === 0) out[i] = NaN;
    return out;
  }

  /**
   * A VARCHAR column's rows as their UTF-8 bytes, one after another, each but the first after
   * `separator` (and the first too unless `first`); NULL rows are left out. The bytes are copied
   * straight out of DuckDB's vector, without a string per row (a native call and a decode each,
   * through the library's getter): this is how the export reads the text DuckDB writes.
   *
   * A row's 16 bytes hold its length, then its bytes up to 12, else a prefix and a pointer. Rows
   * DuckDB wrote one after another lie one after another in its string heap (each start aligned
   * to 8 bytes), so a run of them is copied with one native call, where a call per row was most
   * of the export's main-thread time (0.75 µs a row). Only what is checked adjacent is merged: a
   * row that starts anywhere but within 8 bytes after the previous one's end starts a new run.
   */
  joinedText(column: number, separator: Uint8Array, first: boolean): Uint8Array {
    if (this.types[column]!.typeId !== DuckDBTypeId.VARCHAR) throw new DataVisorError('INTERNAL', `column ${column} is not VARCHAR`);
    const n = this.rowCount;
    const vector = duckdb.data_chunk_get_vector(this.chunk.chunk, column);
    const data = duckdb.vector_get_data(vector, n * 16);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const valid = duckdb.vector_get_validity(vector, Math.ceil(n / 64) * 8);
    const isValid = (i: number) => !valid || ((valid[i >>> 3]! >>> (i & 7)) & 1) === 1;
    const length = (i: number) => view.getUint32(i * 16, true);
    // A heap address (below 2^48 on every 64-bit platform DuckDB runs on: exact as a double).
    const address = (i: number) => view.getUint32(i * 16 + 12, true) * 4294967296 + view.getUint32(i * 16 + 8, true);
    let size = 0;
    for (let i = 0; i < n; i++) if (isValid(i)) size += length(i) + separator.length;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    let leading = first;
    const put = (bytes: Uint8Array) => {
      if (!leading) {
        out.set(separator, at);
        at += separator.length;
      }
      leading = false;
      out.set(bytes, at);
      at += bytes.length;
    };
    // The open run: rows [runFirst, runLast] (valid, out of line), their heap from runStart to runEnd.
    let runFirst = -1;
    let runLast = -1;
    let runStart = 0;
    let runEnd = 0;
    const flush = () => {
      if (runFirst < 0) return;
      const heap = duckdb.get_data_from_pointer(data.buffer as ArrayBuffer, data.byteOffset + runFirst * 16 + 8, runEnd - runStart);
      for (let i = runFirst; i <= runLast; i++) {
        if (!isValid(i)) continue;
        const from = address(i) - runStart;
        put(heap.subarray(from, from + length(i)));
      }
      runFirst = -1;
    };
    for (let i = 0; i < n; i++) {
      if (!isValid(i)) continue;
      const len = length(i);
      if (len <= 12) {
        flush();
        put(data.subarray(i * 16 + 4, i * 16 + 4 + len));
        continue;
      }
      const start = address(i);
      if (runFirst >= 0 && start >= runEnd && start - runEnd < 8) {
        runLast = i;
        runEnd = start + len;
        continue;
      }
      flush();
      runFirst = runLast = i;
      runStart = start;
      runEnd = start + len;
    }
    flush();
    return out.subarray(0, at);
  }

  /** A VARCHAR column, null for NULL. */
  strings(column: number): (string | null)[] {
    const vector = this.chunk.getColumnVector(column);
    const out: (string | null)[] = new Array(this.rowCount);
    for (let i = 0; i < this.rowCount; i++) out[i] = vector.getItem(i) as string | null;
    return out;
  }
}

/**
 * A materialized result → row objects, BIGINT as number. Read straight from the chunks' vectors:
 * numbers, booleans and strings come out of them as they are, and only other values (dates,
 * lists) go through the library's converter; its generic path costs a callback per value, which
 * was a tenth of a GraphQL page's time.
 */
function rowsOf(result: DuckDBMaterializedResult): Row[] {
  const names = result.columnNames();
  const types = result.columnTypes();
  const rows: Row[] = [];
  for (let k = 0; k < result.chunkCount; k++) rowsOfChunk(result.getChunk(k), names, types, rows);
  return rows;
}

/**
 * A statement's result on `conn`, a chunk (2,048 rows at most) at a time, with its columns' names
 * and types. The next chunk is fetched (on a libuv thread) while the caller works on this one; a
 * caller that stops early waits for that fetch before the connection can be closed.
 */
async function* resultChunks(conn: DuckDBConnection, sql: string, params: Params): AsyncGenerator<{ chunk: DuckDBDataChunk; names: string[]; types: DuckDBType[] }> {
  const result = await conn.stream(sql, params.map(toValue));
  const names = result.columnNames();
  const types = result.columnTypes();
  let next = result.fetchChunk();
  try {
    for (let chunk = await next; chunk && chunk.rowCount > 0; chunk = await next) {
      next = result.fetchChunk();
      yield { chunk, names, types };
    }
  } finally {
    await next.catch(() => undefined);
  }
}

function rowsOfChunk(chunk: DuckDBDataChunk, names: readonly string[], types: readonly DuckDBType[], rows: Row[] = []): Row[] {
  const vectors = names.map((_, c) => chunk.getColumnVector(c));
  for (let i = 0; i < chunk.rowCount; i++) {
    const row: Row = {};
    for (let c = 0; c < names.length; c++) {
      let v: unknown = vectors[c]!.getItem(i);
      if (typeof v === 'object' && v !== null) v = JSDuckDBValueConverter(v as DuckDBValue, types[c]!, JSDuckDBValueConverter);
      row[names[c]!] = typeof v === 'bigint' ? Number(v) : v;
    }
    rows.push(row);
  }
  return rows;
}

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
