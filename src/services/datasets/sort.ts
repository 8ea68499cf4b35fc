import { createHash } from 'node:crypto';
import { BadInputError } from '../errors.js';
import { isId } from '../ids.js';

/**
 * The one sample sort, as filter.ts is the one filter: REST's `sort`/`direction`/`sort_*`
 * parameters and GraphQL's SampleSort input map onto it, with the same checks and the same hash
 * (which a sorted cursor carries). Semantics in docs/curation.md, "Sort and filter"; the SQL in
 * db/sample-sort.ts.
 */
export const SAMPLE_SORT_FIELDS = {
  file_name: { needs: null, keyType: 'string', nullable: false },
  width: { needs: null, keyType: 'number', nullable: true },
  height: { needs: null, keyType: 'number', nullable: true },
  pixels: { needs: null, keyType: 'number', nullable: true },
  annotation_count: { needs: null, keyType: 'number', nullable: false },
  category_count: { needs: 'category', keyType: 'number', nullable: false },
  prediction_score_max: { needs: 'predictions', keyType: 'number', nullable: true },
  prediction_score_min: { needs: 'predictions', keyType: 'number', nullable: true },
  tp: { needs: 'evaluationId', keyType: 'number', nullable: false },
  fp: { needs: 'evaluationId', keyType: 'number', nullable: false },
  fn: { needs: 'evaluationId', keyType: 'number', nullable: false },
  random: { needs: 'seed', keyType: 'number', nullable: false },
} as const satisfies Record<string, { needs: SortParameter | null; keyType: 'string' | 'number'; nullable: boolean }>;

export type SampleSortField = keyof typeof SAMPLE_SORT_FIELDS;
type SortParameter = 'category' | 'predictions' | 'evaluationId' | 'seed';
const PARAMETERS: readonly SortParameter[] = ['category', 'predictions', 'evaluationId', 'seed'];

/** A sort as the APIs receive it. */
export interface SampleSortInput {
  field: string;
  direction?: string | null;
  /** category_count: the category's name. */
  category?: string | null;
  /** prediction_score_max/min: the prediction run's name. */
  predictions?: string | null;
  /** tp/fp/fn: the evaluation's id. */
  evaluationId?: string | null;
  /** random: any integer from 0 to 2^32 − 1; the same seed gives the same order. */
  seed?: number | null;
}

export interface SampleSort {
  field: SampleSortField;
  direction: 'asc' | 'desc';
  category?: string;
  predictions?: string;
  evaluationId?: string;
  seed?: number;
}

const MAX_SEED = 2 ** 32 - 1;

/**
 * The sort an input asks for, checked; null without one (file order). `name` spells a part as the
 * caller's API does, for errors: every field names what it needs and refuses what it does not use.
 */
export function toSampleSort(input: SampleSortInput | null | undefined, name: (part: keyof SampleSortInput) => string = (p) => p): SampleSort | null {
  if (!input) return null;
  const field = String(input.field).toLowerCase();
  if (!Object.hasOwn(SAMPLE_SORT_FIELDS, field)) {
    throw new BadInputError(`${name('field')}: ${JSON.stringify(input.field)} is not a sort field; use one of ${Object.keys(SAMPLE_SORT_FIELDS).join(', ')}`);
  }
  const spec = SAMPLE_SORT_FIELDS[field as SampleSortField];
  const direction = String(input.direction ?? 'asc').toLowerCase();
  if (direction !== 'asc' && direction !== 'desc') throw new BadInputError(`${name('direction')}: ${JSON.stringify(input.direction)} is not a direction; use asc or desc`);
  const sort: SampleSort = { field: field as SampleSortField, direction };
  for (const p of PARAMETERS) {
    const v = input[p];
    if (p === spec.needs) {
      if (v === undefined || v === null || v === '') throw new BadInputError(`sorting by ${field} needs ${name(p)}${NEEDS[p]}`);
    } else if (v !== undefined && v !== null) {
      throw new BadInputError(`${name(p)} is only used when sorting by ${fieldsNeeding(p)}, not by ${field}`);
    }
  }
  if (spec.needs === 'seed') {
    if (!Number.isInteger(input.seed) || input.seed! < 0 || input.seed! > MAX_SEED) {
      throw new BadInputError(`${name('seed')} must be an integer between 0 and ${MAX_SEED}, got ${JSON.stringify(input.seed)}`);
    }
    sort.seed = input.seed!;
  }
  if (spec.needs === 'evaluationId') {
    if (typeof input.evaluationId !== 'string' || !isId(input.evaluationId)) throw new BadInputError(`${name('evaluationId')}: ${JSON.stringify(input.evaluationId)} is not an evaluation id`);
    sort.evaluationId = input.evaluationId;
  }
  if (spec.needs === 'category') sort.category = String(input.category);
  if (spec.needs === 'predictions') sort.predictions = String(input.predictions);
  return sort;
}

const NEEDS: Record<SortParameter, string> = {
  category: ' (a category name)',
  predictions: ' (a prediction run name)',
  evaluationId: ' (an evaluation id)',
  seed: ' (an integer: the same seed gives the same order)',
};

const fieldsNeeding = (p: SortParameter) =>
  Object.entries(SAMPLE_SORT_FIELDS)
    .filter(([, s]) => s.needs === p)
    .map(([f]) => f)
    .join(', ');

/** 8 characters of a SHA-256 of the sort: what a sorted cursor carries besides the filter's hash. */
export function sortHash(sort: SampleSort): string {
  const canonical = [sort.field, sort.direction, sort.category ?? null, sort.predictions ?? null, sort.evaluationId ?? null, sort.seed ?? null];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 8);
}
