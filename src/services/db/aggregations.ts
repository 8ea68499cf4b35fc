import { ANNOTATION_VALUES, IMAGE_SIZES, isAnnotationField, selectedImageSizes, type HistogramField } from './annotation-values.js';
import type { Database, Param, Row } from './connection.js';
import { hasFilter, selectedOrds, type SampleQueryFilter } from './samples.js';
import { summaryOf, type SummaryNeed, type SummaryPart } from './summaries.js';

export type { HistogramField };

/**
 * Aggregations over the samples a filter selects (docs/curation.md, "Aggregations"), each one SQL
 * statement. The filter is the samples listing's own WHERE clause (db/samples.ts), so every filter
 * field there is here too. Annotation-level parts read the annotations of one label set (0: the
 * ground truth) of the selected samples. Every value is bound; field expressions come from the
 * fixed maps below, never from input.
 */
export interface AggregateScope {
  datasetId: string;
  filter: SampleQueryFilter;
  /** The label set annotation-level parts count: 0 is the ground truth, else a prediction run. */
  labelSet: number;
  /**
   * The summaries (db/summaries.ts) held for this read, those summaryNeeds names: label set → the
   * revision their rows are stamped with. Absent: the parts read the annotations.
   */
  summaries?: ReadonlyMap<number, number>;
}

/** A scope with the summaries held. */
type SummaryScope = AggregateScope & { summaries: ReadonlyMap<number, number> };

/** The revision a held summary of `labelSet` is stamped with. */
function summaryRevision(scope: SummaryScope, labelSet: number): number {
  const revision = scope.summaries.get(labelSet);
  if (revision === undefined) throw new Error(`the summaries of label set ${labelSet} are not held for this read (summaryNeeds)`);
  return revision;
}

/**
 * The summaries a part reads: `part` of the counted label set (categories: categories and
 * co-occurrence; an annotation field: an unfiltered histogram without a range, histogramPart), and the
 * categories of a category filter's label set, whose selection they answer.
 */
export function summaryNeeds(scope: AggregateScope, part: SummaryPart | null): SummaryNeed[] {
  const needs: SummaryNeed[] = part ? [{ labelSet: scope.labelSet, part }] : [];
  const filtered = categoryFilterLabelSet(scope.filter);
  if (filtered !== null && !(part === 'categories' && filtered === scope.labelSet)) needs.push({ labelSet: filtered, part: 'categories' });
  return needs;
}

/**
 * The label set a filter of categories alone (no other condition on annotations or samples) reads:
 * such a selection is the samples of those categories in the category summaries. Null for any other filter.
 */
function categoryFilterLabelSet(f: SampleQueryFilter): number | null {
  if (f.categoryIds === undefined || hasFilter({ ...f, categoryIds: undefined, labelSet: undefined })) return null;
  return f.labelSet ?? 0;
}

/**
 * The ords of the selected samples as a subquery (column `sel_ord`, each once), or '' for every
 * sample. A category filter alone with the summaries held reads them: one row per (sample,
 * category), so one category needs no DISTINCT (person at 1M images, joined with the annotations:
 * 59 against 112 ms).
 */
function selection(scope: AggregateScope, params: Param[]): string {
  const labelSet = categoryFilterLabelSet(scope.filter);
  if (labelSet === null || !scope.summaries?.has(labelSet)) return selectedOrds(scope.filter, params);
  const ids = scope.filter.categoryIds!;
  const categories = ids.length === 0 ? 'false' : `(${ids.map((id) => `c.category_id = $${params.push(id)}::BIGINT`).join(' OR ')})`;
  const revision = summaryRevision(scope as SummaryScope, labelSet);
  return `SELECT ${ids.length > 1 ? 'DISTINCT ' : ''}c.sample_ord AS sel_ord FROM sample_categories c WHERE ${summaryOf('c', revision, labelSet, params)} AND ${categories}`;
}

/** The selected samples' rows (table name `samples`), values bound into `params` (which start with the dataset id). */
function sampleRows(scope: AggregateScope, params: Param[]): string {
  const selected = selection(scope, params);
  return selected ? `FROM samples JOIN (${selected}) sel ON sel.sel_ord = samples.ord WHERE samples.dataset_id = $1` : 'FROM samples WHERE dataset_id = $1';
}

/** Annotations (alias `a`, `join` adding tables) of the label set in the selected samples. */
function annotationRows(scope: AggregateScope, params: Param[], sizes = false): string {
  const selected = selection(scope, params);
  params.push(scope.labelSet);
  const labelSet = `a.label_set = $${params.length}::INTEGER`;
  // No filter: the scan alone. Else a join on the selected ords, not `IN`: each ord comes once, so
  // the join keeps each annotation once, and DuckDB builds a table of unique keys instead of a
  // semi-join's (~1.5× faster for category=person on train2017 scale). With the image sizes too,
  // one join with the selected samples' sizes rather than two joins of every annotation.
  let join = selected ? ` JOIN (${selected}) sel ON sel.sel_ord = a.sample_ord` : '';
  if (sizes) join = selected ? selectedImageSizes(selected) : IMAGE_SIZES;
  return `FROM annotations a${join} WHERE a.dataset_id = $1 AND ${labelSet}`;
}

/**
 * Samples selected, and annotations of the label set in them. Ground truth: the stored per-sample
 * counts, no join; a prediction run: its category summary (counts per sample and category).
 */
export async function countRows(db: Database, scope: AggregateScope): Promise<{ samples: number; annotations: number }> {
  const params: Param[] = [scope.datasetId];
  let sql: string;
  if (scope.labelSet === 0) {
    sql = `SELECT count(*) AS samples, coalesce(sum(annotation_count), 0)::BIGINT AS annotations ${sampleRows(scope, params)}`;
  } else {
    const annotations = summaryCounts(held(scope), params, 'sum(c.n)');
    // The same placeholders serve both subqueries: the selection's values are bound once, first.
    sql = `SELECT (SELECT count(*) ${sampleRows(scope, [scope.datasetId])}) AS samples, (${annotations}) AS annotations`;
  }
  const [r] = await db.query(sql, params);
  return { samples: Number(r?.samples ?? 0), annotations: Number(r?.annotations ?? 0) };
}

function held(scope: AggregateScope): SummaryScope {
  if (scope.summaries === undefined) throw new Error('this part reads the category summaries: hold them first (AggregationService.read)');
  return scope as SummaryScope;
}

/** A SELECT of `columns` over the category summary rows (alias `c`) of the selected samples; `tail` after its WHERE. */
function summaryCounts(scope: SummaryScope, params: Param[], columns: string, tail = ''): string {
  const selected = selection(scope, params);
  const sel = selected ? ` JOIN (${selected}) sel ON sel.sel_ord = c.sample_ord` : '';
  return `SELECT ${columns} FROM sample_categories c${sel} WHERE ${summaryOf('c', summaryRevision(scope, scope.labelSet), scope.labelSet, params)}${tail}`;
}

/**
 * Per category id: annotations, and the samples holding one, from the category summary (one row
 * per sample and category: the sample count is a count, not a distinct count of the annotations'
 * samples: person at train2017 scale 63 → 15 ms). Categories without any are left out.
 */
export async function categoryCountRows(db: Database, scope: AggregateScope): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  return db.query(summaryCounts(held(scope), params, 'c.category_id, sum(c.n)::BIGINT AS annotations, count(*) AS samples', ' GROUP BY c.category_id'), params);
}

export async function splitCountRows(db: Database, scope: AggregateScope): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  return db.query(`SELECT split, count(*) AS n ${sampleRows(scope, params)} GROUP BY split ORDER BY n DESC, split NULLS LAST`, params);
}

/**
 * Every label set of the dataset (ground truth first) with its annotations in the selected samples.
 * No filter: the counts stored with the label sets (kept by every change's recount and each run's
 * import), not a GROUP BY over every annotation (92 ms at 1M images).
 */
export async function labelSetCountRows(db: Database, scope: AggregateScope): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  const selected = selection(scope, params);
  if (!selected) return db.query('SELECT label_set, name, kind, annotation_count AS n FROM label_sets WHERE dataset_id = $1 ORDER BY label_set', params);
  return db.query(
    `SELECT l.label_set, l.name, l.kind, coalesce(c.n, 0) AS n FROM label_sets l
     LEFT JOIN (SELECT a.label_set, count(*) AS n FROM annotations a JOIN (${selected}) sel ON sel.sel_ord = a.sample_ord WHERE a.dataset_id = $1 GROUP BY a.label_set) c ON c.label_set = l.label_set
     WHERE l.dataset_id = $1 ORDER BY l.label_set`,
    params,
  );
}

/**
 * Pairs of categories (a < b by id) and the samples holding both, most frequent first, at most
 * `limit`. Every sample: the pairs counted when the summary was built. A selection: its samples'
 * category summary rows joined with themselves, or, when it holds more than half the rows, the
 * other samples' rows, whose pairs are taken from every sample's: the self-join's cost grows with
 * the rows it reads (category=person: 54 → 26 ms CPU at train2017 scale, 452 → 255 at 1M images).
 */
export async function cooccurrenceRows(db: Database, query: AggregateScope, limit: number): Promise<Row[]> {
  const scope = held(query);
  const params: Param[] = [scope.datasetId];
  const order = () => `ORDER BY n DESC, a, b LIMIT $${params.push(limit)}::INTEGER`;
  // One row per pair and range of samples built (db/summaries.ts): summed here.
  const revision = summaryRevision(scope, scope.labelSet);
  const total = () => `SELECT p.a, p.b, sum(p.n) AS n FROM category_pairs p WHERE ${summaryOf('p', revision, scope.labelSet, params)} GROUP BY p.a, p.b`;
  const selected = selection(scope, params);
  if (!selected) return db.query(`${total()} ${order()}`, params);
  return db.query(
    `WITH c AS (SELECT c.sample_ord, c.category_id, sel.sel_ord IS NOT NULL AS inside
       FROM sample_categories c LEFT JOIN (${selected}) sel ON sel.sel_ord = c.sample_ord WHERE ${summaryOf('c', revision, scope.labelSet, params)}),
     side AS (SELECT 2 * count(*) FILTER (WHERE inside) > count(*) AS outside FROM c),
     x AS (SELECT sample_ord, category_id FROM c WHERE inside <> (SELECT outside FROM side)),
     counted AS (SELECT x.category_id AS a, y.category_id AS b, count(*) AS n FROM x JOIN x y ON x.sample_ord = y.sample_ord AND x.category_id < y.category_id GROUP BY ALL),
     total AS (${total()})
     SELECT a, b, n FROM (
       SELECT t.a, t.b, t.n - coalesce(k.n, 0) AS n FROM total t LEFT JOIN counted k ON k.a = t.a AND k.b = t.b WHERE (SELECT outside FROM side)
       UNION ALL SELECT a, b, n FROM counted WHERE NOT (SELECT outside FROM side)
     ) WHERE n > 0 ${order()}`,
    params,
  );
}

const SAMPLE_VALUES: Partial<Record<HistogramField, string>> = {
  width: 'width',
  height: 'height',
  pixels: 'width::DOUBLE * height',
  annotations_per_sample: 'annotation_count',
};

export interface HistogramQuery {
  field: HistogramField;
  /** null: Sturges' rule, ceil(log2(n) + 1), over the values counted. */
  bins: number | null;
  /** Both or neither: values outside [min, max] are not counted; null: the data's min and max. */
  range: { min: number; max: number } | null;
  /** Bins of equal width in ln(value); values ≤ 0 are not counted. */
  log: boolean;
}

/** The values a field histograms, one per row, named x (nulls and non-finite values left out). */
function histogramValues(scope: AggregateScope, field: HistogramField, params: Param[]): string {
  if (isAnnotationField(field)) {
    const annotationValue = ANNOTATION_VALUES[field];
    return `SELECT (${annotationValue})::DOUBLE AS x ${annotationRows(scope, params, field === 'relative_size')}`;
  }
  if (field === 'annotations_per_sample' && scope.labelSet !== 0) {
    // A run's count per sample, 0 for the selected samples without one of its annotations.
    const selected = selection(scope, params) || 'SELECT ord AS sel_ord FROM samples WHERE dataset_id = $1';
    params.push(scope.labelSet);
    return `SELECT coalesce(c.n, 0)::DOUBLE AS x FROM (${selected}) s
      LEFT JOIN (SELECT sample_ord, count(*) AS n FROM annotations WHERE dataset_id = $1 AND label_set = $${params.length}::INTEGER GROUP BY sample_ord) c ON c.sample_ord = s.sel_ord`;
  }
  return `SELECT (${SAMPLE_VALUES[field]!})::DOUBLE AS x ${sampleRows(scope, params)}`;
}

/**
 * The summary part a histogram reads: an annotation field's minimum, maximum and finite count over
 * the whole label set (db/summaries.ts), without a filter or a range (a given range needs no
 * minimum, and Sturges' count within it needs the values).
 */
export function histogramPart(scope: AggregateScope, q: HistogramQuery): SummaryPart | null {
  return isAnnotationField(q.field) && q.range === null && !hasFilter(scope.filter) ? q.field : null;
}

/**
 * One histogram, numpy.histogram's way: `bins` equal bins between lo and hi, every bin half-open
 * [e_i, e_i+1) except the last, which holds hi. Edges are lo + i·(hi − lo)/bins, the last exactly
 * hi (numpy.linspace), computed once in SQL and answered as they are. A range of one value
 * (lo = hi) becomes [lo − 0.5, hi + 0.5], as in numpy. With `log` the same is done to ln(value).
 *
 * The counting is DuckDB's histogram(value, boundaries) aggregate, which counts each value under
 * the first boundary ≥ it (a value above all: under an overflow key, +∞ for doubles). The
 * boundaries are the double just below each edge e_1 … e_n−1, then hi: v ≤ nextafter(e_i, −∞) is v
 * < e_i, so v lands under the first edge above it, i.e. in the bin of the last edge ≤ it (numpy's
 * searchsorted right), and hi in the last bin. One more boundary first, just below lo, takes the
 * values under the range, and the overflow key those over it; neither is a bin. So the range needs
 * no filter, and the only per-value work is a binary search in one aggregate state, no hash table:
 * ~3× faster than grouping by a computed bin (docs/curation.md). The boundaries join the values
 * (one row): as a scalar subquery in the aggregate's arguments DuckDB planned a grouped aggregate,
 * 1–3 ms slower at train2017 scale. Lo and hi come from a min/max pass
 * over the same values in the same statement, none when the range and the bin count are given.
 * Answers one row: `edges` (bins + 1 values), `bounds` (the boundaries), and `keys` and `counts`:
 * the boundaries counted under and their counts (doubles: BIGINT in a list would stay a bigint).
 */
export async function histogramRows(db: Database, scope: AggregateScope, q: HistogramQuery): Promise<Row> {
  const params: Param[] = [scope.datasetId];
  const values = histogramValues(scope, q.field, params);
  const bind = (v: Param, cast: string) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
  // ln of a value ≤ 0 is not finite: those are null, which no aggregate counts (a null rather
  // than a WHERE: no filtered copy of the rows, ~1 ms of 27 at train2017 scale).
  const v = q.log ? `SELECT CASE WHEN x > 0 THEN ln(x) END AS t FROM (${values})` : `SELECT x AS t FROM (${values})`;
  const lo = q.range ? (q.log ? `ln(${bind(q.range.min, 'DOUBLE')})` : bind(q.range.min, 'DOUBLE')) : 'mn';
  const hi = q.range ? (q.log ? `ln(${bind(q.range.max, 'DOUBLE')})` : bind(q.range.max, 'DOUBLE')) : 'mx';
  const bins = q.bins === null ? 'CAST(ceil(log2(greatest(c, 1)) + 1) AS INTEGER)' : bind(q.bins, 'INTEGER');
  // What the range and the bin count need from the values: the finite values' min and max without
  // a range; for Sturges, the values in the range (numpy's selectors), or the finite ones.
  const needs = [
    q.range ? null : 'min(t) FILTER (WHERE isfinite(t)) AS mn, max(t) FILTER (WHERE isfinite(t)) AS mx',
    q.bins === null ? `count(*) FILTER (WHERE ${q.range ? `t >= ${lo} AND t <= ${hi}` : 'isfinite(t)'}) AS c` : null,
  ].filter((x) => x !== null);
  let from = needs.length > 0 ? ` FROM (SELECT ${needs.join(', ')} FROM v)` : '';
  const part = histogramPart(scope, q);
  if (part !== null && scope.summaries?.has(scope.labelSet)) {
    // The same minimum, maximum and finite count, kept with the summary.
    from = ` FROM field_stats f WHERE ${summaryOf('f', summaryRevision(scope as SummaryScope, scope.labelSet), scope.labelSet, params)} AND f.field = ${bind(part, 'VARCHAR')} AND f.log = ${bind(q.log, 'BOOLEAN')}`;
  }
  const r0 = `SELECT ${lo} AS lo, ${hi} AS hi, ${bins} AS n${from}`;
  const below = (x: string) => `nextafter(${x}, '-inf'::DOUBLE)`;
  // Read twice (its min and max, then the counts): computed once.
  const twice = from.includes('FROM v');
  const [row] = await db.query(
    `WITH v AS ${twice ? 'MATERIALIZED ' : ''}(${v}),
     r0 AS (${r0}),
     r AS (SELECT CASE WHEN lo = hi THEN lo - 0.5 ELSE coalesce(lo, 0) END AS lo, CASE WHEN lo = hi THEN hi + 0.5 ELSE coalesce(hi, 1) END AS hi, n FROM r0),
     e AS (SELECT lo, hi, n, [CASE WHEN i = n THEN hi ELSE i * ((hi - lo) / n) + lo END FOR i IN range(n + 1)] AS edges FROM r),
     b AS (SELECT edges, [${below('lo')}] || [${below('edges[i + 1]')} FOR i IN range(1, n)] || [hi] AS bounds FROM e)
     SELECT b.edges, b.bounds, map_keys(h.h) AS keys, [c::DOUBLE FOR c IN map_values(h.h)] AS counts
     FROM b, (SELECT histogram(t, bounds) AS h FROM v, b) h`,
    params,
  );
  return row!;
}

/**
 * Distinct values at a JSON path of the samples' metadata with their counts, most frequent first
 * (then by value text), at most `limit`; a sample without the path counts as JSON null. `jsonPath`
 * is bound, never spliced into the SQL.
 */
export async function metadataValueRows(db: Database, scope: AggregateScope, jsonPath: string, limit: number): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  const rows = sampleRows(scope, params);
  params.push(jsonPath, limit);
  const n = params.length;
  return db.query(
    `SELECT coalesce(json_extract(metadata, $${n - 1}::VARCHAR)::VARCHAR, 'null') AS value, count(*) AS n ${rows}
     GROUP BY ALL ORDER BY n DESC, value LIMIT $${n}::INTEGER`,
    params,
  );
}
