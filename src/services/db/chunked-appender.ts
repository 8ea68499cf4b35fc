// Before DuckDB loads: it configures DuckDB's allocator.
import './allocator.js';
import { DuckDBDataChunkWriter, type DuckDBAppender, type DuckDBValue } from '@duckdb/node-api';

/**
 * Rows an appender may hold before they go into the table. DuckDB's Appender buffers up to 100
 * chunks (204,800 rows) of its own, which for three staging tables was ~45 MB of a 500K-image
 * ingest's peak RSS (419 MB). Each flush costs time of its own: every 8 chunks gave 375 MB and
 * 0.84 s of the main thread on train2017, every 32 chunks 393 MB and 0.50 s.
 */
const FLUSH_ROWS = 32 * 2048;

/**
 * A DuckDB appender fed whole data chunks: each row is written into `row`, then `endRow()`; rows
 * cross into DuckDB a chunk (2048 rows) at a time. The Appender's per-value calls
 * (`appendDouble`, `endRow`: one native call each) took a third of the main thread's time on a
 * train2017-scale ingest; DuckDB's own DuckDBDataChunkWriter takes ~25% less for the same rows.
 */
export class ChunkedAppender {
  /** The row being written, one value per column of the table (null for NULL). */
  readonly row: DuckDBValue[];
  private readonly writer: DuckDBDataChunkWriter;
  private pending = 0;

  constructor(private readonly appender: DuckDBAppender) {
    this.row = new Array<DuckDBValue>(appender.columnCount).fill(null);
    this.writer = DuckDBDataChunkWriter.forAppender(appender);
  }

  /** Queues a copy of `row`; a full chunk goes to DuckDB, and every FLUSH_ROWS rows into the table. */
  endRow(): void {
    this.writer.appendRow(this.row);
    if (++this.pending === FLUSH_ROWS) this.flush();
  }

  /** Hands every queued row to DuckDB's table (still inside the transaction). */
  flush(): void {
    this.writer.flush();
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
}
