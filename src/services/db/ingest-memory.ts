import type { DuckDBConnection } from '@duckdb/node-api';

/** Where an ingest is: appending its rows as it reads the file, or writing its final tables (and committing). */
export type IngestPhase = 'appending' | 'finishing';

/**
 * DuckDB's memory_limit follows the running ingests. While they only append rows, DuckDB's buffer
 * pool would keep every block written so far up to the full limit: a 500K-image file's ingest
 * then peaked ~1.3× the 118K one's, the pool full of staging blocks nothing reads until the end.
 * So while ingests append and none writes its final tables, the limit is the lower ingest limit
 * (older blocks go to disk); whenever one writes its final tables (a sort that needs the full
 * limit: at 64MB the 500K file's ran out of memory), or none runs, it is the full limit
 * (docs/storage.md, "Memory"). memory_limit is one setting for the whole instance, so reads
 * during an ingest's reading get the ingest limit too; a read needs a few MB and evicts staging
 * blocks when it needs more.
 */
export class IngestMemory {
  private appending = 0;
  private finishing = 0;
  private applied: string | undefined;
  /** SET statements run one at a time, in the order the phases changed. */
  private queue: Promise<void> = Promise.resolve();

  /** `limits` null: the limit stays as it is (counting only). */
  constructor(
    private readonly conn: DuckDBConnection,
    private readonly limits: { full: string; ingest: string } | null,
  ) {
    this.applied = limits?.full;
  }

  /** Moves one ingest into `to` (from `from`, or from nowhere); resolves once the limit is set. */
  move(from: IngestPhase | null, to: IngestPhase | null): Promise<void> {
    if (from) this[from]--;
    if (to) this[to]++;
    if (!this.limits) return this.queue;
    const want = this.appending > 0 && this.finishing === 0 ? this.limits.ingest : this.limits.full;
    this.queue = this.queue.then(async () => {
      if (want === this.applied) return;
      try {
        await this.conn.run(`SET memory_limit = '${want.replaceAll("'", "''")}'`);
        this.applied = want;
      } catch {
        // Lowering fails when DuckDB cannot free enough (a large read is running): the full limit
        // stays, which only costs memory, and the next phase change tries again.
      }
    });
    return this.queue;
  }

  close(): void {
    this.conn.closeSync();
  }
}
