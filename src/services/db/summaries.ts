import { ANNOTATION_VALUES, IMAGE_SIZES, type AnnotationField } from './annotation-values.js';
import type { Database, Param, Row } from './connection.js';

/**
 * What a summary holds, per label set of a dataset at one revision of that label set (its
 * `label_sets.revision`: the dataset's revision when its annotations last changed):
 * - `categories`: `sample_categories`, one row per (sample, category) with its annotation count,
 *   and `category_pairs`, the pairs of categories found together with the samples holding both;
 * - an annotation field (`bbox_area`, …): `field_stats`, the minimum, maximum and count of the
 *   field's finite values, and of their ln (values > 0): what an unfiltered histogram's range and
 *   Sturges' bin count need, instead of a pass over every annotation before the counting one.
 */
export type SummaryPart = 'categories' | AnnotationField;

/** One summary a read needs: a part of a label set. */
export interface SummaryNeed {
  labelSet: number;
  part: SummaryPart;
}

/** The conditions naming one dataset's summary rows (`alias`) of a revision and label set; `$1` is the dataset id, the rest bound into `params`. */
export function summaryOf(alias: string, revision: number, labelSet: number, params: Param[]): string {
  params.push(revision, labelSet);
  return `${alias}.dataset_id = $1 AND ${alias}.revision = $${params.length - 1}::BIGINT AND ${alias}.label_set = $${params.length}::INTEGER`;
}

/** Each label set of a dataset: the revision its summaries are stamped with, and the parts built at it. */
const BUILT = `SELECT l.label_set, l.revision, list(b.part) FILTER (WHERE b.part IS NOT NULL) AS built
  FROM label_sets l LEFT JOIN summary_builds b ON b.dataset_id = l.dataset_id AND b.label_set = l.label_set AND b.revision = l.revision
  WHERE l.dataset_id = $1 GROUP BY l.label_set, l.revision`;

/** What BUILT answers, by label set. */
function labelSetsOf(rows: Row[]): Map<number, { revision: number; built: string[] }> {
  return new Map(rows.map((r) => [r.label_set as number, { revision: r.revision as number, built: (r.built as string[] | null) ?? [] }]));
}

/**
 * Samples a build statement covers at most: the annotations lie in sample order, so a range of
 * samples is a range of row groups, and each statement's hash tables hold a range's groups. At 1M
 * images one GROUP BY of the whole dataset ran out of the 128MB memory limit. (Tests build small
 * datasets in several ranges by setting a small one.)
 */
export const buildOptions = { chunkSamples: 100_000 };

/**
 * The statements building one part: `once` (first deleting what rows of the part there are at that
 * revision: none, unless summary_builds lost its row), then `perRange` for each range of sample
 * ords [$4, $5). `$1` dataset id, `$2` revision, `$3` label set.
 */
function buildStatements(part: SummaryPart): { once: string[]; perRange: string[] } {
  const of = (alias: string) => `${alias}.dataset_id = $1 AND ${alias}.revision = $2 AND ${alias}.label_set = $3`;
  const mine = 'dataset_id = $1 AND revision = $2 AND label_set = $3';
  const range = (alias: string) => `${alias}.sample_ord >= $4 AND ${alias}.sample_ord < $5`;
  if (part === 'categories') {
    return {
      once: [`DELETE FROM sample_categories WHERE ${mine}`, `DELETE FROM category_pairs WHERE ${mine}`],
      // Pairs per range: category_pairs holds one row per pair and range, summed when read.
      perRange: [
        `INSERT INTO sample_categories SELECT $1, $2, $3, a.sample_ord, a.category_id, count(*)
         FROM annotations a WHERE a.dataset_id = $1 AND a.label_set = $3 AND ${range('a')} GROUP BY ALL`,
        `INSERT INTO category_pairs SELECT $1, $2, $3, x.category_id, y.category_id, count(*)
         FROM sample_categories x JOIN sample_categories y ON y.sample_ord = x.sample_ord AND x.category_id < y.category_id
         WHERE ${of('x')} AND ${range('x')} AND ${of('y')} AND ${range('y')}
         GROUP BY ALL`,
      ],
    };
  }
  // The histogram's own value expression (annotation-values.ts), its finite values, and ln of those
  // > 0 (else null, which no aggregate counts). One pass, no groups: no ranges needed.
  const values = `SELECT (${ANNOTATION_VALUES[part]})::DOUBLE AS x
    FROM annotations a${part === 'relative_size' ? IMAGE_SIZES : ''} WHERE a.dataset_id = $1 AND a.label_set = $3`;
  const stats = (v: string, [mn, mx, c]: string[]) => {
    const finite = `FILTER (WHERE isfinite(${v}))`;
    return `min(${v}) ${finite} AS ${mn}, max(${v}) ${finite} AS ${mx}, count(*) ${finite} AS ${c}`;
  };
  const once = [
    `DELETE FROM field_stats WHERE ${mine} AND field = '${part}'`,
    `INSERT INTO field_stats
     WITH g AS (SELECT ${stats('x', ['mn', 'mx', 'c'])}, ${stats('t', ['lmn', 'lmx', 'lc'])} FROM (SELECT x, CASE WHEN x > 0 THEN ln(x) END AS t FROM (${values})))
     SELECT $1, $2, $3, '${part}', false, mn, mx, c FROM g UNION ALL SELECT $1, $2, $3, '${part}', true, lmn, lmx, lc FROM g`,
  ];
  return { once, perRange: [] };
}

/** Every summary table, for the sweep of what no read can use any more. */
const TABLES = ['summary_builds', 'sample_categories', 'category_pairs', 'field_stats'];

/** The summaries of a read's label sets, held for it; `release` lets the next build delete them. */
export interface SummaryLease {
  /** Label set → the revision its summary rows are stamped with (summaryOf's `revision`). */
  revisions: ReadonlyMap<number, number>;
  release: () => void;
}

/**
 * Summaries kept per label set revision for the aggregations (docs/curation.md, "Summaries").
 *
 * Rows are stamped with the revision of the label set they summarize, which every change of its
 * annotations moves (an ingest `--into` the ground truth's, an import a run's; a deleted run takes
 * its label set along), and are read only at that revision. A change that leaves the annotations
 * as they are (tags, views, evaluations) moves the dataset's revision, not the label sets', so
 * what was built stays good. Summaries are built when an aggregation first needs them, in one
 * transaction that reads the label sets' revisions and the annotations in the same snapshot.
 * Other revisions' rows, and those of deleted label sets and datasets, are deleted by the next
 * build, except a revision a read is using (leases). Only builds write these tables, one at a time
 * in this process (the only writer of the file), so a build conflicts with no change.
 */
class Summaries {
  /** Builds, one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Builds committed so far: a check that saw fewer may have raced one that deleted what it saw. */
  private builds = 0;
  /** Set while a build runs: it may have deleted, before a read's lease, the rows that read saw. */
  private building = false;
  /** Reads using each `datasetId/labelSet@revision`. */
  private readonly leases = new Map<string, number>();

  constructor(private readonly db: Database) {}

  /** The summaries `needs` at their label sets' current revisions (built first if missing), held until `release`; null when the dataset or a label set does not exist. */
  async lease(datasetId: string, needs: readonly SummaryNeed[]): Promise<SummaryLease | null> {
    for (;;) {
      const seen = this.builds;
      const sets = labelSetsOf(await this.db.query(BUILT, [datasetId]));
      if (needs.some((n) => !sets.has(n.labelSet))) return null;
      if (needs.every((n) => sets.get(n.labelSet)!.built.includes(n.part))) {
        const revisions = new Map(needs.map((n) => [n.labelSet, sets.get(n.labelSet)!.revision]));
        const keys = [...revisions].map(([labelSet, revision]) => `${datasetId}/${labelSet}@${revision}`);
        for (const key of keys) this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
        let held = true;
        const release = () => {
          if (!held) return;
          held = false;
          for (const key of keys) {
            const n = this.leases.get(key)! - 1;
            if (n > 0) this.leases.set(key, n);
            else this.leases.delete(key);
          }
        };
        if (!this.building && this.builds === seen) return { revisions, release };
        // A build ran or runs meanwhile and may have deleted these rows: look again after it.
        release();
        await this.queue;
        continue;
      }
      const build = this.queue.then(() => this.build(datasetId, needs));
      this.queue = build.catch(() => undefined);
      await build;
    }
  }

  /** Builds what is missing at the label sets' current revisions, and deletes what no read can use. */
  private async build(datasetId: string, needs: readonly SummaryNeed[]): Promise<void> {
    const tx = await this.db.begin();
    // Before the sweep below: a read that leases from here on waits for this build.
    this.building = true;
    try {
      // First what no read can use: every revision of a label set but its current one (none for a
      // deleted label set or dataset), unless a read holds it. Found in summary_builds (a row per
      // part built) and deleted revision by revision: a join of each summary row with the datasets
      // ran out of the 128MB limit at 1M images.
      const stale = await tx.query(
        `SELECT DISTINCT b.dataset_id, b.label_set, b.revision FROM summary_builds b
         WHERE NOT EXISTS (SELECT 1 FROM label_sets l WHERE l.dataset_id = b.dataset_id AND l.label_set = b.label_set AND l.revision = b.revision)`,
      );
      for (const r of stale) {
        const [id, labelSet, revision] = [r.dataset_id as string, r.label_set as number, r.revision as number];
        if (this.leases.has(`${id}/${labelSet}@${revision}`)) continue;
        for (const table of TABLES) await tx.run(`DELETE FROM ${table} WHERE dataset_id = $1 AND label_set = $2 AND revision = $3`, [id, labelSet, revision]);
      }
      const sets = labelSetsOf(await tx.query(BUILT, [datasetId]));
      const [size] = await tx.query('SELECT coalesce(max(ord) + 1, 0) AS n FROM samples WHERE dataset_id = $1', [datasetId]);
      for (const n of needs) {
        const set = sets.get(n.labelSet);
        if (!set || set.built.includes(n.part)) continue;
        const { once, perRange } = buildStatements(n.part);
        for (const sql of once) await tx.run(sql, [datasetId, set.revision, n.labelSet]);
        for (let lo = 0; perRange.length > 0 && lo < Number(size!.n); lo += buildOptions.chunkSamples) {
          for (const sql of perRange) await tx.run(sql, [datasetId, set.revision, n.labelSet, lo, lo + buildOptions.chunkSamples]);
        }
        await tx.run('INSERT INTO summary_builds VALUES ($1, $2, $3, $4)', [datasetId, set.revision, n.labelSet, n.part]);
        set.built.push(n.part);
      }
      await tx.commit();
      this.builds++;
    } finally {
      await tx.rollback();
      this.building = false;
    }
  }
}

const summaries = new WeakMap<Database, Summaries>();

/** The summaries `needs` at the dataset's current revision, held until released (null: no such dataset). */
export function leaseSummaries(db: Database, datasetId: string, needs: readonly SummaryNeed[]): Promise<SummaryLease | null> {
  let s = summaries.get(db);
  if (!s) summaries.set(db, (s = new Summaries(db)));
  return s.lease(datasetId, needs);
}
