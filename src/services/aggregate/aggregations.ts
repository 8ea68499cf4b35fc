import { ByteLru } from '../common/byte-lru.js';
import type { Database } from '../db/connection.js';
import {
  categoryCountRows, cooccurrenceRows, countRows, histogramPart, histogramRows, labelSetCountRows, metadataValueRows, splitCountRows, summaryNeeds,
  type AggregateScope, type HistogramField,
} from '../db/aggregations.js';
import { leaseSummaries, type SummaryPart } from '../db/summaries.js';
import { hasFilter } from '../db/samples.js';
import type { Dataset, DatasetService } from '../datasets/datasets.js';
import { filterHash, type SampleFilter } from '../datasets/filter.js';
import type { SampleService } from '../datasets/samples.js';
import { BadInputError, DataVisorError, NotFoundError } from '../errors.js';
import type { PredictionService } from '../predictions/predictions.js';
import { normalizeMetadataPath } from '../datasets/metadata-filter.js';

export type { HistogramField };
export const HISTOGRAM_FIELDS: readonly HistogramField[] = ['bbox_area', 'aspect_ratio', 'relative_size', 'score', 'annotations_per_sample', 'width', 'height', 'pixels'];
export const MAX_BINS = 1000;
/** Rows a list part (co-occurring pairs, metadata values) answers at most. */
export const MAX_LIST = 1000;

/** What the aggregations of one request run over: the dataset at one revision, the filtered samples, one label set. */
export interface AggregateTarget {
  dataset: Dataset;
  /** The prediction run annotation-level parts count; null: the ground truth. */
  predictions: string | null;
  query: AggregateScope;
  /** The dataset's revision, the filter's hash and the label set: what every cached part is keyed on. */
  key: string;
}

export interface CategoryCount {
  categoryId: number;
  name: string;
  /** Annotations of the category in the selected samples. */
  count: number;
  /** Selected samples with at least one of them; computed only when asked for (a distinct count). */
  sampleCount: number | null;
}

export interface HistogramRequest {
  field: HistogramField;
  bins?: number | null;
  min?: number | null;
  max?: number | null;
  scale?: 'linear' | 'log' | null;
}

export interface Histogram {
  field: HistogramField;
  scale: 'linear' | 'log';
  /** bins + 1 values, ascending. */
  edges: number[];
  counts: number[];
}

/** Answers kept in memory; keyed on the dataset's revision, so a change is never served stale. */
const CACHE_BYTES = 16 * 1024 * 1024;
/** What an answer still running is counted as; once there, its JSON's length twice (UTF-16) and the key's. */
const RUNNING_BYTES = 1024;

/**
 * Counts, breakdowns and histograms over the samples a filter selects (docs/curation.md,
 * "Aggregations"): REST and GraphQL call the same methods with the same checks. Each part is one
 * SQL statement over the filtered rows (db/aggregations.ts); nothing loads rows into JavaScript.
 * Answers are cached by dataset revision, filter hash, label set and part: a dashboard asks the same
 * questions again as its user moves between views, and a changed dataset has a new revision.
 */
export class AggregationService {
  private readonly cache: ByteLru<{ answer: Promise<unknown>; bytes: number }>;

  constructor(
    private readonly db: Database,
    private readonly datasets: DatasetService,
    private readonly samples: SampleService,
    private readonly predictions: PredictionService,
    /** 0 turns the cache off (the bench measures the SQL). */
    options: { cacheBytes?: number } = {},
  ) {
    this.cache = new ByteLru(options.cacheBytes ?? CACHE_BYTES, (e) => e.bytes);
  }

  /**
   * The target of a request's aggregations: NOT_FOUND for an unknown dataset, prediction run or
   * evaluation; the filter already checked (filter.ts).
   */
  async target(datasetId: string, filter: SampleFilter, predictions?: string | null): Promise<AggregateTarget> {
    const dataset = await this.datasets.get(datasetId);
    const labelSet = predictions == null ? 0 : (await this.predictions.get(datasetId, predictions)).labelSet;
    const query = { datasetId, filter: await this.samples.toQuery(datasetId, filter), labelSet };
    return { dataset, predictions: predictions ?? null, query, key: `${datasetId}@${dataset.revision}/${filterHash(filter)}/${labelSet}` };
  }

  async counts(t: AggregateTarget): Promise<{ sampleCount: number; annotationCount: number }> {
    if (!hasFilter(t.query.filter) && t.query.labelSet === 0) return { sampleCount: t.dataset.imageCount, annotationCount: t.dataset.annotationCount };
    const { samples, annotations } = await this.cached(t, 'counts', () => this.read(t, t.query.labelSet !== 0 ? 'categories' : null, (q) => countRows(this.db, q)));
    return { sampleCount: samples, annotationCount: annotations };
  }

  /** Categories with at least one annotation in the selected samples, most annotations first, then by name. */
  async categories(t: AggregateTarget, options: { sampleCounts?: boolean } = {}): Promise<CategoryCount[]> {
    const all = await this.datasets.categories(t.dataset.id);
    let counts: { categoryId: number; count: number; sampleCount: number | null }[];
    if (!hasFilter(t.query.filter) && t.query.labelSet === 0) {
      // The ground truth's counts are stored with the categories (kept by every change).
      counts = all.map((c) => ({ categoryId: c.categoryId, count: c.annotationCount, sampleCount: c.imageCount }));
    } else {
      const samples = options.sampleCounts === true;
      counts = (await this.cached(t, 'categories', () => this.read(t, 'categories', (q) => categoryCountRows(this.db, q)))).map((r) => ({
        categoryId: r.category_id as number,
        count: r.annotations as number,
        sampleCount: samples ? (r.samples as number) : null,
      }));
    }
    const names = new Map(all.map((c) => [c.categoryId, c.name]));
    return counts
      .filter((c) => c.count > 0)
      .map((c) => ({ ...c, name: names.get(c.categoryId) ?? String(c.categoryId) }))
      .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Selected samples per split (null: no split), most first. */
  async splits(t: AggregateTarget): Promise<{ name: string | null; count: number }[]> {
    const rows = await this.cached(t, 'splits', () => this.read(t, null, (q) => splitCountRows(this.db, q)));
    return rows.map((r) => ({ name: (r.split as string | null) ?? null, count: r.n as number }));
  }

  /** Every label set of the dataset (ground truth first, then runs) with its annotations in the selected samples. */
  async labelSets(t: AggregateTarget): Promise<{ name: string; kind: string; count: number }[]> {
    const rows = await this.cached(t, 'label-sets', () => this.read(t, null, (q) => labelSetCountRows(this.db, q)));
    return rows.map((r) => ({ name: r.name as string, kind: r.kind as string, count: r.n as number }));
  }

  /** Pairs of categories found together in selected samples, with how many samples hold both; most first. */
  async cooccurrence(t: AggregateTarget, limit = 20): Promise<{ a: string; b: string; count: number }[]> {
    checkLimit(limit);
    const [rows, all] = await Promise.all([this.cached(t, `cooccurrence/${limit}`, () => this.read(t, 'categories', (q) => cooccurrenceRows(this.db, q, limit))), this.datasets.categories(t.dataset.id)]);
    const names = new Map(all.map((c) => [c.categoryId, c.name]));
    const name = (id: unknown) => names.get(id as number) ?? String(id);
    return rows.map((r) => ({ a: name(r.a), b: name(r.b), count: r.n as number }));
  }

  async histogram(t: AggregateTarget, request: HistogramRequest): Promise<Histogram> {
    const { field } = request;
    if (!HISTOGRAM_FIELDS.includes(field)) throw new BadInputError(`field ${JSON.stringify(field)} is not a histogram field; use one of ${HISTOGRAM_FIELDS.join(', ')}`);
    if (field === 'score' && t.query.labelSet === 0) throw new BadInputError('field score needs predictions (a prediction run\'s name): the ground truth has no scores');
    const bins = request.bins ?? null;
    if (bins !== null && (!Number.isInteger(bins) || bins < 1 || bins > MAX_BINS)) {
      throw new BadInputError(`bins must be an integer between 1 and ${MAX_BINS} (or left out for Sturges' rule), got ${JSON.stringify(bins)}`);
    }
    const scale = request.scale ?? 'linear';
    const range = checkRange(request.min ?? null, request.max ?? null, scale);
    const q = { field, bins, range, log: scale === 'log' };
    const row = await this.cached(t, `histogram/${JSON.stringify(q)}`, () => this.read(t, histogramPart(t.query, q), (scope) => histogramRows(this.db, scope, q)));
    const edges = row.edges as number[];
    const n = edges.length - 1;
    // Boundary j ≥ 1 closes bin j − 1 (the first of equal boundaries: edges can be equal when the
    // range is tiny against lo); boundary 0 holds the values under the range, and the overflow
    // bucket (keyed +∞ for doubles) those over it.
    const bin = new Map<number, number>();
    (row.bounds as number[]).forEach((b, j) => bin.has(b) || bin.set(b, j - 1));
    const hi = edges[n]!;
    const counts = new Array<number>(n).fill(0);
    const keys = (row.keys as (number | null)[] | null) ?? [];
    keys.forEach((key, k) => {
      const i = key === null || key > hi ? -1 : bin.get(key);
      if (i === undefined) throw new DataVisorError('INTERNAL', `histogram: a count under ${key}, which is not a boundary`);
      if (i >= 0) counts[i]! += (row.counts as number[])[k]!;
    });
    return { field, scale, edges: q.log ? edges.map(Math.exp) : edges, counts };
  }

  /** Distinct values at a metadata path with the selected samples holding each, most first; a sample without it counts as null. */
  async metadata(t: AggregateTarget, path: string, limit = 100): Promise<{ value: unknown; count: number }[]> {
    checkLimit(limit);
    const jsonPath = normalizeMetadataPath(path, 'path');
    const rows = await this.cached(t, `metadata/${jsonPath}/${limit}`, () => this.read(t, null, (q) => metadataValueRows(this.db, q, jsonPath, limit)));
    return rows.map((r) => ({ value: JSON.parse(r.value as string) as unknown, count: r.n as number }));
  }

  /**
   * Runs a part's SQL with the summaries it reads held (db/summaries.ts): `part` of the counted
   * label set, and a category filter's (summaryNeeds). The first read after a change builds them
   * (docs/curation.md, "Summaries"). Both run with DuckDB's worker threads (db/ingest-resources.ts).
   */
  private async read<T>(t: AggregateTarget, part: SummaryPart | null, run: (scope: AggregateScope) => Promise<T>): Promise<T> {
    return this.db.ingestResources.analyse(async () => {
      const needs = summaryNeeds(t.query, part);
      if (needs.length === 0) return run(t.query);
      const lease = await leaseSummaries(this.db, t.dataset.id, needs);
      // The dataset, or a run the read counts or filters on, was deleted meanwhile.
      if (!lease) throw t.predictions ? new NotFoundError('prediction run', t.predictions) : new NotFoundError('dataset', t.dataset.id);
      try {
        return await run({ ...t.query, summaries: lease.revisions });
      } finally {
        lease.release();
      }
    });
  }

  /** One part's answer, computed once per key and kept (a failure is not). */
  private cached<T>(t: AggregateTarget, part: string, compute: () => Promise<T>): Promise<T> {
    const key = `${t.key}/${part}`;
    const hit = this.cache.get(key);
    if (hit) return hit.answer as Promise<T>;
    const answer = compute();
    const entry = { answer, bytes: RUNNING_BYTES };
    this.cache.set(key, entry);
    const ours = () => this.cache.get(key) === entry;
    answer.then(
      (rows) => ours() && this.cache.set(key, { answer, bytes: 2 * (key.length + JSON.stringify(rows).length) }),
      () => ours() && this.cache.delete(key),
    );
    return answer;
  }
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) throw new BadInputError(`limit must be an integer between 1 and ${MAX_LIST}, got ${JSON.stringify(limit)}`);
}

function checkRange(min: number | null, max: number | null, scale: 'linear' | 'log'): { min: number; max: number } | null {
  if (min === null && max === null) return null;
  if (min === null || max === null) throw new BadInputError(`give both min and max, or neither (the data's own range); got only ${min === null ? 'max' : 'min'}`);
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new BadInputError('min and max must be finite numbers');
  if (!(min < max)) throw new BadInputError(`min must be less than max, got min ${min} and max ${max}`);
  if (scale === 'log' && min <= 0) throw new BadInputError(`a log scale needs min > 0, got min ${min}`);
  return { min, max };
}
