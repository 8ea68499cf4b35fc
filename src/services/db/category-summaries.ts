import type { Database, Param, Row } from './connection.js';

/** The conditions naming one dataset's summary rows (`alias`) of a revision and label set; `$1` is the dataset id, the rest bound into `params`. */
export function summaryOf(alias: string, revision: number, labelSet: number, params: Param[]): string {
  params.push(revision, labelSet);
  return `${alias}.dataset_id = $1 AND ${alias}.revision = $${params.length - 1}::BIGINT AND ${alias}.label_set = $${params.length}::INTEGER`;
}

const BUILT = `SELECT d.revision, list(b.label_set) FILTER (WHERE b.label_set IS NOT NULL) AS built
  FROM datasets d LEFT JOIN summary_builds b ON b.dataset_id = d.id AND b.revision = d.revision WHERE d.id = $1 GROUP BY d.revision`;

const BUILD = [
  `INSERT INTO sample_categories SELECT $1, $2, label_set, sample_ord, category_id, count(*)
   FROM annotations WHERE dataset_id = $1 AND label_set = $3 GROUP BY ALL`,
  `INSERT INTO category_pairs SELECT $1, $2, $3, x.category_id, y.category_id, count(*)
   FROM sample_categories x JOIN sample_categories y ON y.sample_ord = x.sample_ord AND x.category_id < y.category_id
   WHERE x.dataset_id = $1 AND x.revision = $2 AND x.label_set = $3 AND y.dataset_id = $1 AND y.revision = $2 AND y.label_set = $3
   GROUP BY ALL`,
  'INSERT INTO summary_builds VALUES ($1, $2, $3)',
];

const built = (row: Row): number[] => (row.built as number[] | null) ?? [];

/** Every summary table, for the sweep of what no read can use any more. */
const TABLES = ['summary_builds', 'sample_categories', 'category_pairs'];

/** A revision's summaries held for a read; `release` lets the next build delete them. */
export interface SummaryLease {
  revision: number;
  release: () => void;
}

/**
 * Which categories each sample holds, kept per dataset revision for the aggregations
 * (docs/curation.md, "Category summaries"): one row per (label set, sample, category) with its
 * annotation count, and per label set the pairs of categories found together with the samples
 * holding both. A category filter then reads ~3.6 rows a sample instead of the distinct samples of
 * every annotation, samples per category is a plain count, and unfiltered co-occurrence is read,
 * not joined.
 *
 * Rows are stamped with the revision they were built at and read only at that revision, so a change
 * (which always bumps the revision) never shows through an old summary. They are built when an
 * aggregation first needs them after a change, in one transaction that reads the revision and the
 * annotations in the same snapshot. Older revisions' rows, and those of deleted datasets, are deleted
 * by the next build, except a revision a read is using (leases). Only builds write these tables, one
 * at a time in this process (the only writer of the file), so a build conflicts with no change.
 */
class CategorySummaries {
  /** Builds, one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Builds committed so far: a check that saw fewer may have raced one that deleted what it saw. */
  private builds = 0;
  /** Reads using each `datasetId@revision`. */
  private readonly leases = new Map<string, number>();

  constructor(private readonly db: Database) {}

  /**
   * The summaries of `labelSets` at the dataset's current revision (built first if missing), held
   * until `release`; null when the dataset does not exist.
   */
  async lease(datasetId: string, labelSets: readonly number[]): Promise<SummaryLease | null> {
    for (;;) {
      const seen = this.builds;
      const [row] = await this.db.query(BUILT, [datasetId]);
      if (!row) return null;
      const revision = row.revision as number;
      if (labelSets.every((l) => built(row).includes(l))) {
        const key = `${datasetId}@${revision}`;
        this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
        let held = true;
        const release = () => {
          if (!held) return;
          held = false;
          const n = this.leases.get(key)! - 1;
          if (n > 0) this.leases.set(key, n);
          else this.leases.delete(key);
        };
        if (this.builds === seen) return { revision, release };
        release(); // a build ran meanwhile and may have deleted these rows: look again
        continue;
      }
      const build = this.queue.then(() => this.build(datasetId, labelSets));
      this.queue = build.catch(() => undefined);
      await build;
    }
  }

  /** Builds what is missing at the current revision, and deletes what no read can use. */
  private async build(datasetId: string, labelSets: readonly number[]): Promise<void> {
    const tx = await this.db.begin();
    try {
      const [row] = await tx.query(BUILT, [datasetId]);
      if (row) {
        const revision = row.revision as number;
        for (const l of labelSets) {
          if (built(row).includes(l)) continue;
          for (const sql of BUILD) await tx.run(sql, [datasetId, revision, l]);
        }
      }
      // Revisions leased by a read stay; every other one is older than some dataset's current one.
      const kept = [...this.leases.keys()];
      const leased = kept.length > 0 ? ` AND NOT list_contains($1::VARCHAR[], t.dataset_id || '@' || t.revision)` : '';
      for (const table of TABLES) {
        await tx.run(`DELETE FROM ${table} t WHERE NOT EXISTS (SELECT 1 FROM datasets d WHERE d.id = t.dataset_id AND d.revision = t.revision)${leased}`, kept.length > 0 ? [kept] : []);
      }
      await tx.commit();
      this.builds++;
    } finally {
      await tx.rollback();
    }
  }
}

const summaries = new WeakMap<Database, CategorySummaries>();

/** The category summaries of `labelSets` at the dataset's current revision, held until released (null: no such dataset). */
export function leaseCategorySummaries(db: Database, datasetId: string, labelSets: readonly number[]): Promise<SummaryLease | null> {
  let s = summaries.get(db);
  if (!s) summaries.set(db, (s = new CategorySummaries(db)));
  return s.lease(datasetId, labelSets);
}
