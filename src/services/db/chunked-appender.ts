import duckdb from '@duckdb/node-bindings';
import { DuckDBDataChunk, DuckDBEnumType, DuckDBTypeId, type DuckDBAppender } from '@duckdb/node-api';

/**
 * Rows an appender may hold before they go into the table. DuckDB's Appender buffers up to 100
 * chunks (204,800 rows) of its own, which for three staging tables was ~45 MB of a 500K-image
 * ingest's peak RSS (419 MB). Each flush costs time of its own: every 8 chunks gave 375 MB and
 * 0.84 s of the main thread on train2017, every 32 chunks 393 MB and 0.50 s.
 */
const FLUSH_ROWS = 32 * 2048;
const CHUNK_ROWS = duckdb.vector_size();

type NumberColumn = Float64Array | Int32Array | Uint8Array;

/**
 * A DuckDB appender fed whole data chunks that are filled column by column: numbers go into a
 * typed array per column, NULLs into a validity bitmap, and each column crosses into DuckDB as one
 * memory copy per chunk (2048 rows). DuckDB's own DuckDBDataChunkWriter copies every row, then
 * sets each value through a generic setter (with BigInt arithmetic for the validity of any column
 * holding a NULL): on train2017's 860,001 annotations that took 0.72 s of the main thread, this
 * 0.29 s (bench numbers in docs/storage.md).
 *
 * Every column of every row must be set before `endRow()`: a cell left unset keeps the value of
 * the row written there one chunk earlier. BIGINT columns are set with `int()`, the others' numbers
 * with `num()`.
 */
export class ChunkedAppender {
  private readonly chunk: DuckDBDataChunk;
  /** Per column: its values (numbers), or null for a VARCHAR column (its strings are in `texts`). */
  private readonly nums: (NumberColumn | null)[] = [];
  /** BIGINT columns: the same bytes as their `nums` entry, as 32-bit halves (`int()` writes them). */
  private readonly halves: (Uint32Array | null)[] = [];
  private readonly texts: ((string | null)[] | null)[] = [];
  /** Per column, one bit per row of the chunk, set = valid (DuckDB's own layout, little-endian). */
  private readonly validity: Uint32Array[] = [];
  /** Columns whose every row holds one value (`constant()`): a constant vector per chunk, nothing per row. */
  private readonly constants: (duckdb.Value | null)[] = [];
  /** Columns that have held a NULL: their validity is copied with every chunk from then on. */
  private readonly nullable: boolean[] = [];
  /** Rows written into the chunk. */
  private n = 0;
  private pending = 0;

  constructor(private readonly appender: DuckDBAppender) {
    const types = [];
    for (let col = 0; col < appender.columnCount; col++) {
      const type = appender.columnType(col);
      types.push(type);
      // An ENUM of up to 256 values is stored as its one-byte code.
      const storage = type instanceof DuckDBEnumType ? type.internalTypeId : type.typeId;
      const values = numberColumn(storage);
      this.nums.push(values);
      this.halves.push(storage === DuckDBTypeId.BIGINT ? new Uint32Array(values!.buffer) : null);
      this.texts.push(type.typeId === DuckDBTypeId.VARCHAR ? new Array<string | null>(CHUNK_ROWS).fill(null) : null);
      this.validity.push(new Uint32Array(CHUNK_ROWS / 32).fill(0xffffffff));
      this.constants.push(null);
      this.nullable.push(false);
    }
    this.chunk = DuckDBDataChunk.create(types);
  }

  /** Sets a number column of the current row; NaN writes NULL. */
  num(col: number, v: number): void {
    if (v !== v) this.setNull(col);
    else this.nums[col]![this.n] = v;
  }

  /**
   * Sets a BIGINT column of the current row to `v`, a safe integer (the caller checks), without a
   * BigInt: its two's complement as two 32-bit halves; NaN writes NULL.
   */
  int(col: number, v: number): void {
    if (v !== v) return this.setNull(col);
    const hi = Math.floor(v / 4294967296);
    const h = this.halves[col]!;
    h[2 * this.n] = v - hi * 4294967296;
    h[2 * this.n + 1] = hi >>> 0;
  }

  bool(col: number, v: boolean): void {
    this.nums[col]![this.n] = v ? 1 : 0;
  }

  /**
   * Every row of column `col` is `v` (a dataset id on every row of a large table; null: NULL):
   * each chunk gets a constant vector instead of a value per row, and the column's per-row setter
   * is not called. A string for VARCHAR, a number for INTEGER, a boolean for BOOLEAN.
   */
  constant(col: number, v: string | number | boolean | null): void {
    const values = this.nums[col];
    if (v === null) this.constants[col] = duckdb.create_null_value();
    else if (values === null && typeof v === 'string') this.constants[col] = duckdb.create_varchar(v);
    else if (values instanceof Int32Array && typeof v === 'number') this.constants[col] = duckdb.create_int32(v);
    else if (values instanceof Uint8Array && typeof v === 'boolean') this.constants[col] = duckdb.create_bool(v);
    else throw new Error(`ChunkedAppender cannot give column ${col} the constant ${JSON.stringify(v)}`);
  }

  /** Sets a VARCHAR column of the current row; null writes NULL. */
  text(col: number, v: string | null): void {
    this.texts[col]![this.n] = v;
    if (v === null) this.setNull(col);
  }

  get columnCount(): number {
    return this.nums.length;
  }

  endRow(): void {
    if (++this.n === CHUNK_ROWS) this.appendChunk();
    if (++this.pending === FLUSH_ROWS) this.flush();
  }

  /** Hands every queued row to DuckDB's table (still inside the transaction). */
  flush(): void {
    if (this.n > 0) this.appendChunk();
    this.appender.flushSync();
    this.pending = 0;
  }

  close(): void {
    this.flush();
    this.appender.closeSync();
  }

  /** Releases the appender without its rows (the transaction is being rolled back). */
  discard(): void {
    try {
      this.appender.closeSync();
    } catch {
      // Rows that failed to flush still leave an appender to release; the rollback discards them.
    }
  }

  private setNull(col: number): void {
    const r = this.n;
    this.validity[col]![r >>> 5]! &= ~(1 << (r & 31));
    this.nullable[col] = true;
  }

  private appendChunk(): void {
    const raw = this.chunk.chunk;
    const n = this.n;
    for (let col = 0; col < this.nums.length; col++) {
      const vector = duckdb.data_chunk_get_vector(raw, col);
      const values = this.nums[col];
      const constant = this.constants[col];
      if (constant) {
        // DataChunk reset (below) gives the column its flat vector back for the next chunk.
        duckdb.vector_reference_value(vector, constant);
        continue;
      } else if (values) {
        duckdb.copy_data_to_vector(vector, 0, values.buffer as ArrayBuffer, 0, n * values.BYTES_PER_ELEMENT);
      } else {
        const strings = this.texts[col]!;
        for (let r = 0; r < n; r++) {
          const s = strings[r];
          if (s != null) duckdb.vector_assign_string_element(vector, r, s);
        }
      }
      if (this.nullable[col]) {
        const bits = this.validity[col]!;
        duckdb.vector_ensure_validity_writable(vector);
        duckdb.copy_data_to_vector_validity(vector, 0, bits.buffer as ArrayBuffer, 0, Math.ceil(n / 64) * 8);
        bits.fill(0xffffffff);
      }
    }
    this.chunk.rowCount = n;
    this.appender.appendDataChunk(this.chunk);
    this.chunk.reset();
    this.n = 0;
  }
}

function numberColumn(type: DuckDBTypeId): NumberColumn | null {
  switch (type) {
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.BIGINT:
      // BIGINT: 8 bytes a row too, written through `halves`.
      return new Float64Array(CHUNK_ROWS);
    case DuckDBTypeId.INTEGER:
      return new Int32Array(CHUNK_ROWS);
    case DuckDBTypeId.BOOLEAN:
    case DuckDBTypeId.UTINYINT:
      return new Uint8Array(CHUNK_ROWS);
    case DuckDBTypeId.VARCHAR:
      return null;
    default:
      throw new Error(`ChunkedAppender cannot write DuckDB type ${DuckDBTypeId[type]}`);
  }
}
