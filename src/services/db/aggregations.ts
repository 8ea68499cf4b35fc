import type { Database, Param, Row } from './connection.js';
import { sampleWhereClause, type SampleQueryFilter } from './samples.js';

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
}

/** The selected samples' rows: `FROM samples WHERE …`, values bound into `params` (which start with the dataset id). */
function sampleRows(scope: AggregateScope, params: Param[]): string {
  return `FROM samples WHERE dataset_id = $1${sampleWhereClause(scope.filter, params)}`;
}

/** Annotations (alias `a`, `join` adding tables) of the label set in the selected samples. */
function annotationRows(scope: AggregateScope, params: Param[], join = ''): string {
  const where = sampleWhereClause(scope.filter, params);
  params.push(scope.labelSet);
  const labelSet = `a.label_set = $${params.length}::INTEGER`;
  // No filter: the scan alone. Else a join on the selected ords, not `IN`: an ord is unique in its
  // dataset, so the join keeps each annotation once, and DuckDB builds a table of unique keys
  // instead of a semi-join's (~1.5× faster for category=person on train2017 scale).
  const selected = where ? ` JOIN (SELECT ord FROM samples WHERE dataset_id = $1${where}) sel ON sel.ord = a.sample_ord` : '';
  return `FROM annotations a${selected}${join} WHERE a.dataset_id = $1 AND ${labelSet}`;
}

/** Samples selected, and annotations of the label set in them. Ground truth: the stored per-sample counts, no join. */
export async function countRows(db: Database, scope: AggregateScope): Promise<{ samples: number; annotations: number }> {
  const params: Param[] = [scope.datasetId];
  let sql: string;
  if (scope.labelSet === 0) {
    sql = `SELECT count(*) AS samples, coalesce(sum(annotation_count), 0)::BIGINT AS annotations ${sampleRows(scope, params)}`;
  } else {
    const annotations = annotationRows(scope, params);
    // The same placeholders serve both subqueries: the filter's values are bound once.
    sql = `SELECT (SELECT count(*) ${sampleRows(scope, [scope.datasetId])}) AS samples, (SELECT count(*) ${annotations}) AS annotations`;
  }
  const [r] = await db.query(sql, params);
  return { samples: Number(r?.samples ?? 0), annotations: Number(r?.annotations ?? 0) };
}

/**
 * Per category id: annotations, and with `samples` the samples holding one (a distinct count, which
 * costs several times the rest: asked for only when wanted). Categories without any are left out.
 */
export async function categoryCountRows(db: Database, scope: AggregateScope, samples: boolean): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  const distinct = samples ? ', count(DISTINCT a.sample_ord) AS samples' : '';
  return db.query(`SELECT a.category_id, count(*) AS annotations${distinct} ${annotationRows(scope, params)} GROUP BY a.category_id`, params);
}

export async function splitCountRows(db: Database, scope: AggregateScope): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  return db.query(`SELECT split, count(*) AS n ${sampleRows(scope, params)} GROUP BY split ORDER BY n DESC, split NULLS LAST`, params);
}

/** Every label set of the dataset (ground truth first) with its annotations in the selected samples. */
export async function labelSetCountRows(db: Database, scope: AggregateScope): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  const where = sampleWhereClause(scope.filter, params);
  const selected = where ? ` AND a.sample_ord IN (SELECT ord FROM samples WHERE dataset_id = $1${where})` : '';
  return db.query(
    `SELECT l.label_set, l.name, l.kind, coalesce(c.n, 0) AS n FROM label_sets l
     LEFT JOIN (SELECT a.label_set, count(*) AS n FROM annotations a WHERE a.dataset_id = $1${selected} GROUP BY a.label_set) c ON c.label_set = l.label_set
     WHERE l.dataset_id = $1 ORDER BY l.label_set`,
    params,
  );
}

/**
 * Pairs of categories (a < b by id) and the samples holding both, most frequent first, at most
 * `limit`: each sample's distinct categories joined with themselves.
 */
export async function cooccurrenceRows(db: Database, scope: AggregateScope, limit: number): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  const cats = `SELECT DISTINCT a.sample_ord, a.category_id ${annotationRows(scope, params)}`;
  params.push(limit);
  return db.query(
    `WITH c AS (${cats})
     SELECT x.category_id AS a, y.category_id AS b, count(*) AS n FROM c x JOIN c y ON x.sample_ord = y.sample_ord AND x.category_id < y.category_id
     GROUP BY ALL ORDER BY n DESC, a, b LIMIT $${params.length}::INTEGER`,
    params,
  );
}

/** What a histogram counts: one value per annotation of the label set, or per sample. */
export type HistogramField = 'bbox_area' | 'aspect_ratio' | 'relative_size' | 'score' | 'annotations_per_sample' | 'width' | 'height' | 'pixels';

/** The value of each field, as SQL over the rows its level reads (fixed text, never input). */
const ANNOTATION_VALUES: Partial<Record<HistogramField, string>> = {
  bbox_area: 'a.bbox_w * a.bbox_h',
  aspect_ratio: 'a.bbox_w / nullif(a.bbox_h, 0)',
  // sqrt of the box's share of the image: a length ratio (COCO's size classes use the sqrt of areas).
  relative_size: 'sqrt(a.bbox_w * a.bbox_h / nullif(s.width::DOUBLE * s.height, 0))',
  score: 'a.score',
};
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
  const annotationValue = ANNOTATION_VALUES[field];
  if (annotationValue !== undefined) {
    const join = field === 'relative_size' ? ' JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord' : '';
    return `SELECT (${annotationValue})::DOUBLE AS x ${annotationRows(scope, params, join)}`;
  }
  if (field === 'annotations_per_sample' && scope.labelSet !== 0) {
    // A run's count per sample, 0 for the selected samples without one of its annotations.
    const where = sampleWhereClause(scope.filter, params);
    params.push(scope.labelSet);
    return `SELECT coalesce(c.n, 0)::DOUBLE AS x FROM (SELECT ord FROM samples WHERE dataset_id = $1${where}) s
      LEFT JOIN (SELECT sample_ord, count(*) AS n FROM annotations WHERE dataset_id = $1 AND label_set = $${params.length}::INTEGER GROUP BY sample_ord) c ON c.sample_ord = s.ord`;
  }
  return `SELECT (${SAMPLE_VALUES[field]!})::DOUBLE AS x ${sampleRows(scope, params)}`;
}

/**
 * One histogram, numpy.histogram's way: `bins` equal bins between lo and hi, every bin half-open
 * [e_i, e_i+1) except the last, which holds hi; a value is put in a bin by its position and then
 * checked against the bin's edges (as numpy does), so a value equal to an edge lands in the bin
 * that edge opens. Edges are lo + i·(hi − lo)/bins, the last exactly hi. A range of one value
 * (lo = hi) becomes [lo − 0.5, hi + 0.5], as in numpy. With `log` the same is done to ln(value).
 * Answers lo, hi and the bin count in every row, and per non-empty bin its count.
 */
export async function histogramRows(db: Database, scope: AggregateScope, q: HistogramQuery): Promise<Row[]> {
  const params: Param[] = [scope.datasetId];
  const values = histogramValues(scope, q.field, params);
  const bind = (v: Param, cast: string) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
  const t = q.log ? 'ln(x)' : 'x';
  const keep = q.log ? 'x > 0' : 'true';
  const lo = q.range ? (q.log ? `ln(${bind(q.range.min, 'DOUBLE')})` : bind(q.range.min, 'DOUBLE')) : 'mn';
  const hi = q.range ? (q.log ? `ln(${bind(q.range.max, 'DOUBLE')})` : bind(q.range.max, 'DOUBLE')) : 'mx';
  const bins = q.bins === null ? 'CAST(ceil(log2(greatest(c, 1)) + 1) AS INTEGER)' : bind(q.bins, 'INTEGER');
  // Sturges counts the values in the range, as numpy's selectors see them.
  const inRange = q.range ? ` FILTER (WHERE t >= ${lo} AND t <= ${hi})` : '';
  return db.query(
    `WITH v AS (SELECT ${t} AS t FROM (${values}) WHERE isfinite(x) AND ${keep}),
     r0 AS (SELECT ${lo} AS lo, ${hi} AS hi, ${bins} AS n FROM (SELECT min(t) AS mn, max(t) AS mx, count(*)${inRange} AS c FROM v)),
     r AS (SELECT CASE WHEN lo = hi THEN lo - 0.5 ELSE coalesce(lo, 0) END AS lo, CASE WHEN lo = hi THEN hi + 0.5 ELSE coalesce(hi, 1) END AS hi, n FROM r0),
     p AS (SELECT t, lo, hi, n, (hi - lo) / n AS step, least(floor((t - lo) / (hi - lo) * n), n - 1)::INTEGER AS i0 FROM v, r WHERE t >= lo AND t <= hi),
     q AS (SELECT t, lo, hi, n, step, CASE WHEN t < i0 * step + lo THEN i0 - 1 ELSE i0 END AS i1 FROM p)
     SELECT lo, hi, n, CASE WHEN i1 < n - 1 AND t >= (i1 + 1) * step + lo THEN i1 + 1 ELSE i1 END AS bin, count(*) AS count FROM q GROUP BY ALL
     UNION ALL SELECT lo, hi, n, NULL, 0 FROM r`,
    params,
  );
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
