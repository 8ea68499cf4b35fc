import { createHash } from 'node:crypto';
import type { SampleQueryFilter } from '../db/samples.js';
import { checkTags } from '../curation/names.js';
import { BadInputError } from '../errors.js';
import { isId } from '../ids.js';

/**
 * The one sample filter. REST query parameters and GraphQL's SampleFilter are two spellings of it
 * (as FiftyOne's get_view serves both its routes and its resolvers): each maps its input here, so
 * both offer every filter, with the same checks and the same hash. Its SQL is in db/samples.ts.
 */
export type SampleFilter = Omit<SampleQueryFilter, 'categoryIds' | 'evaluationCategoryIds' | 'also'> & {
  /** Category names: the sample has an annotation in one of them. */
  categories?: readonly string[];
  /** Category names: the evaluation's objects that count are of one of them. */
  evaluationCategories?: readonly string[];
  /** A second filter that must hold too: a saved view's, with the one of the request (curation/views.ts). */
  also?: SampleFilter;
};

/** A filter as the APIs receive it: every field optional or null; `category` joins `categories`. */
export interface SampleFilterInput {
  category?: string | null;
  categories?: readonly string[] | null;
  split?: string | null;
  fileNameContains?: string | null;
  minAnnotations?: number | null;
  maxAnnotations?: number | null;
  isCrowd?: boolean | null;
  minBboxArea?: number | null;
  maxBboxArea?: number | null;
  fileMissing?: boolean | null;
  /**
   * Samples with an object of an evaluation that has one of the outcomes `has` (TP, FP, FN; all
   * three when absent), one of the error kinds `errors` (TIDE's, and `missed`) and one of the
   * `categories`, each when given: one object must meet them all.
   */
  evaluation?: { id: string; has?: readonly string[] | null; errors?: readonly string[] | null; categories?: readonly string[] | null } | null;
  /** Tagged with any of these; `tagsAll`: with each; `tagsNone`: with none of them. */
  tags?: readonly string[] | null;
  tagsAll?: readonly string[] | null;
  tagsNone?: readonly string[] | null;
  /** The sample has an annotation tagged with any of these. */
  annotationTags?: readonly string[] | null;
}

type FieldKind = 'string' | 'count' | 'number' | 'boolean' | 'evaluation' | 'tags';

/** Every filter field, its kind, and its REST query parameter (snake_case, as REST's JSON). */
export const SAMPLE_FILTER_FIELDS: Readonly<Record<keyof SampleFilterInput, { param: string; kind: FieldKind | 'strings' }>> = {
  category: { param: 'category', kind: 'string' },
  categories: { param: 'categories', kind: 'strings' },
  split: { param: 'split', kind: 'string' },
  fileNameContains: { param: 'file_name_contains', kind: 'string' },
  minAnnotations: { param: 'min_annotations', kind: 'count' },
  maxAnnotations: { param: 'max_annotations', kind: 'count' },
  isCrowd: { param: 'is_crowd', kind: 'boolean' },
  minBboxArea: { param: 'min_bbox_area', kind: 'number' },
  maxBboxArea: { param: 'max_bbox_area', kind: 'number' },
  fileMissing: { param: 'file_missing', kind: 'boolean' },
  evaluation: { param: 'evaluation', kind: 'evaluation' },
  tags: { param: 'tags', kind: 'tags' },
  tagsAll: { param: 'tags_all', kind: 'tags' },
  tagsNone: { param: 'tags_none', kind: 'tags' },
  annotationTags: { param: 'annotation_tags', kind: 'tags' },
};

const OUTCOMES = ['tp', 'fp', 'fn'] as const;
const ERRORS = ['classification', 'localization', 'both', 'duplicate', 'background', 'missed'] as const;

/** The SQL binds counts as 32-bit integers. */
const MAX_COUNT = 2_147_483_647;

/**
 * The filter an input asks for, checked: absent and null fields are left out, category names
 * are merged and deduplicated. `name` spells a field as the caller's API does, for errors.
 */
export function toSampleFilter(input: SampleFilterInput | null | undefined, name: (field: keyof SampleFilterInput) => string = (f) => f): SampleFilter {
  if (!input) return {};
  const filter: Record<string, unknown> = {};
  for (const [field, spec] of Object.entries(SAMPLE_FILTER_FIELDS) as [keyof SampleFilterInput, (typeof SAMPLE_FILTER_FIELDS)[keyof SampleFilterInput]][]) {
    const v = input[field];
    if (v === undefined || v === null || field === 'category' || field === 'categories') continue;
    if (spec.kind === 'evaluation') {
      Object.assign(filter, evaluationFilter(v as NonNullable<SampleFilterInput['evaluation']>, name(field)));
      continue;
    }
    if (spec.kind === 'tags') {
      filter[field] = checkTags(v as readonly string[], name(field));
      continue;
    }
    if (spec.kind === 'count' && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_COUNT)) {
      throw new BadInputError(`${name(field)} must be an integer between 0 and ${MAX_COUNT}, got ${JSON.stringify(v)}`);
    }
    if (spec.kind === 'number' && !Number.isFinite(v)) throw new BadInputError(`${name(field)} must be a finite number, got ${JSON.stringify(v)}`);
    filter[field] = v;
  }
  if (input.category != null || input.categories != null) {
    filter.categories = [...new Set([...(input.category != null ? [input.category] : []), ...(input.categories ?? [])])];
  }
  return filter as SampleFilter;
}

/**
 * A short, stable hash of what a filter selects: key order and the order or repetition of
 * category names do not change it.
 */
type EvaluationFields = Pick<SampleFilter, 'evaluationId' | 'evaluationHas' | 'evaluationErrors' | 'evaluationCategories'>;

function evaluationFilter(e: NonNullable<SampleFilterInput['evaluation']>, label: string): EvaluationFields {
  if (typeof e.id !== 'string' || !isId(e.id)) throw new BadInputError(`${label}: ${JSON.stringify(e.id)} is not an evaluation id`);
  const out: EvaluationFields = { evaluationId: e.id };
  if (e.has != null) out.evaluationHas = oneOf(e.has, OUTCOMES, `${label}: has`, 'an outcome');
  if (e.errors != null) out.evaluationErrors = oneOf(e.errors, ERRORS, `${label}: errors`, 'an error kind');
  if (e.categories != null) {
    if (e.categories.length === 0) throw new BadInputError(`${label}: categories: name at least one category, or leave it out for any`);
    out.evaluationCategories = [...new Set(e.categories)].sort();
  }
  return out;
}

/** The distinct values of `given` (any case), each one of `allowed`, sorted; at least one. */
function oneOf<T extends string>(given: readonly string[], allowed: readonly T[], label: string, what: string): T[] {
  const values = [...new Set(given.map((o) => String(o).toLowerCase()))];
  const bad = values.find((o) => !(allowed as readonly string[]).includes(o));
  const list = allowed.map((a) => a.toUpperCase()).join(', ');
  if (bad !== undefined) throw new BadInputError(`${label}: ${JSON.stringify(bad)} is not ${what}; use ${list}`);
  if (values.length === 0) throw new BadInputError(`${label}: name at least one of ${list}, or leave it out for any`);
  return (values as T[]).sort();
}

export function filterHash(filter: SampleFilter): string {
  const canonical = Object.entries(filter)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, k === 'also' ? filterHash(v as SampleFilter) : Array.isArray(v) ? [...new Set(v as string[])].sort() : v] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 8);
}
