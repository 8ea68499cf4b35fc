import type { DuckDBConnection } from '@duckdb/node-api';

/** Where an ingest is: appending its rows as it reads the file, or writing its final tables (and committing). */
export type IngestPhase = 'appending' | 'finishing';

/** How long DuckDB's workers stay up after the last aggregation (see below). */
export const ANALYSIS_LINGER_MS = 200;

/** DuckDB's two allocator flush thresholds (sizes as DuckDB reads them): after a task, and after a bulk deallocation. */
export interface AllocatorFlush {
  task: string;
  bulk: string;
}

/** What an ingest runs with: freed pages handed back when each task ends. */
const FLUSH_AT_ONCE: AllocatorFlush = { task: '0 bytes', bulk: '0 bytes' };

const quoted = (value: string) => `'${value.replaceAll("'", "''")}'`;

/**
 * Three instance-wide DuckDB settings follow the running ingests (docs/storage.md, "Memory" and
 * "Threads"). An ingest here is anything that moves through the phases: a dataset's ingest, a
 * prediction run's import.
 *
 * memory_limit: while ingests only append rows, DuckDB's buffer pool would keep every block
 * written so far up to the full limit: a 500K-image file's ingest then peaked ~1.3× the 118K one's,
 * the pool full of staging blocks nothing reads until the end. So while ingests append and none
 * writes its final tables, the limit is the lower ingest limit (older blocks go to disk); whenever
 * one writes its final tables (a sort that needs the full limit: at 64MB the 500K file's ran out of
 * memory), or none runs, it is the full limit. Reads during an ingest's reading get the ingest
 * limit too; a read needs a few MB and evicts staging blocks when it needs more.
 *
 * allocator flush thresholds: DuckDB's jemalloc keeps freed pages for a second, so a statement
 * reuses the pages the one before it freed. An ingest frees and allocates hundreds of MB within
 * that second, and its peak RSS would hold both (~390 against ~285 MB on the train2017-scale
 * file); while any ingest runs, each of DuckDB's tasks hands what it freed back when it ends
 * (`allocator_flush_threshold` and `allocator_bulk_deallocation_flush_threshold` 0), and when none
 * does they are DuckDB's own again. Returning pages at once for every statement instead cost
 * aggregations ~25% and the export's text ~30% of their time, in page faults.
 *
 * threads: DuckDB's own worker threads run only while an ingest does. An idle worker calls glibc's
 * malloc_trim half a second after its last task, which locks and walks every malloc arena of the
 * process, sharp's included, and hands their free pages back, which libvips then faults in again
 * (tens of ms of CPU per trim in a burst of cold thumbnails; ~1% of their throughput in paired
 * runs). The server's reads are lookups of a few pages that a second thread does not speed up
 * (the GraphQL bench is unchanged), while the ingest's final statements need the workers (with
 * one thread the 118K file's runs out of memory). Aggregations (analyse()) get them too: each
 * scans every annotation of a dataset, which two threads do in about half the wall time on an
 * otherwise idle machine. The workers stop ANALYSIS_LINGER_MS after the last one ends: a dashboard
 * asks for its parts together, and a switch there and back costs ~3.5 ms (a worker started and joined),
 * while an idle worker trims only after half a second.
 */
export class IngestResources {
  private appending = 0;
  private finishing = 0;
  private analysing = 0;
  /** Set while the threads stay up after the last analytical read (ANALYSIS_LINGER_MS). */
  private lingering: ReturnType<typeof setTimeout> | null = null;
  private appliedLimit: string | undefined;
  private appliedThreads: number | undefined;
  private appliedFlushTask: string | undefined;
  private appliedFlushBulk: string | undefined;
  /** SET statements run one at a time, in the order the phases changed. */
  private queue: Promise<void> = Promise.resolve();

  /**
   * `limits` null: memory_limit stays as it is. `threads.ingest` is DuckDB's own thread count (its
   * default is the number of cores), `threads.analysis` the count while only aggregations run,
   * `threads.idle` the count while neither runs. `flush` is DuckDB's allocator flush thresholds
   * as they were at open, what they are while no ingest runs (null: they stay as they are).
   */
  constructor(
    private readonly conn: DuckDBConnection,
    private readonly limits: { full: string; ingest: string } | null,
    private readonly threads: { ingest: number; idle: number; analysis: number },
    private readonly flush: AllocatorFlush | null,
  ) {
    this.appliedLimit = limits?.full;
    this.appliedThreads = threads.ingest;
    this.appliedFlushTask = flush?.task;
    this.appliedFlushBulk = flush?.bulk;
  }

  /** Moves one ingest into `to` (from `from`, or from nowhere); resolves once the settings are applied. */
  move(from: IngestPhase | null, to: IngestPhase | null): Promise<void> {
    if (from) this[from]--;
    if (to) this[to]++;
    return this.apply();
  }

  /** Runs `read`, an analytical statement (an aggregation), with DuckDB's worker threads. */
  async analyse<T>(read: () => Promise<T>): Promise<T> {
    this.analysing++;
    if (this.lingering) clearTimeout(this.lingering);
    this.lingering = null;
    try {
      await this.apply();
      return await read();
    } finally {
      if (--this.analysing === 0) {
        this.lingering = setTimeout(() => {
          this.lingering = null;
          void this.apply();
        }, ANALYSIS_LINGER_MS);
        this.lingering.unref();
      }
    }
  }

  /** Applies the settings the running ingests and analytical reads ask for, after those asked before. */
  private apply(): Promise<void> {
    const limit = this.limits && (this.appending > 0 && this.finishing === 0 ? this.limits.ingest : this.limits.full);
    const ingesting = this.appending + this.finishing > 0;
    const threads = ingesting ? this.threads.ingest : this.analysing > 0 || this.lingering ? this.threads.analysis : this.threads.idle;
    const flush = this.flush && (ingesting ? FLUSH_AT_ONCE : this.flush);
    this.queue = this.queue.then(async () => {
      if (threads !== this.appliedThreads && (await this.set('threads', String(threads)))) this.appliedThreads = threads;
      if (limit && limit !== this.appliedLimit && (await this.set('memory_limit', quoted(limit)))) this.appliedLimit = limit;
      if (flush && flush.task !== this.appliedFlushTask && (await this.set('allocator_flush_threshold', quoted(flush.task)))) this.appliedFlushTask = flush.task;
      if (flush && flush.bulk !== this.appliedFlushBulk && (await this.set('allocator_bulk_deallocation_flush_threshold', quoted(flush.bulk)))) this.appliedFlushBulk = flush.bulk;
    });
    return this.queue;
  }

  /** Resolves once the settings asked for so far are applied (or refused): before close(). */
  idle(): Promise<void> {
    return this.queue;
  }

  close(): void {
    if (this.lingering) clearTimeout(this.lingering);
    this.conn.closeSync();
  }

  /**
   * False when DuckDB refuses: lowering the limit fails while a large read holds more memory than
   * the new limit. The old value stays, which only costs memory, and the next phase change tries again.
   */
  private async set(name: string, value: string): Promise<boolean> {
    try {
      await this.conn.run(`SET ${name} = ${value}`);
      return true;
    } catch {
      return false;
    }
  }
}
