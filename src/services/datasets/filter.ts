import { createHash } from 'node:crypto';
import type { SampleQueryFilter } from '../db/samples.js';
import { checkTags } from '../curation/names.js';
import { BadInputError } from '../errors.js';
import { isId } from '../ids.js';
import { metadataParamText, toMetadataConditions, type MetadataConditionInput } from './metadata-filter.js';

/**
 * The one sample filter. REST query parameters and GraphQL's SampleFilter are two spellings of it
 * (as FiftyOne's get_view serves both its routes and its resolvers): each maps its input here, so
 * both offer every filter, with the same checks and the same hash. Its SQL is in db/samples.ts.
 */
export type SampleFilter = Omit<SampleQueryFilter, 'categoryIds' | 'evaluationCategoryIds' | 'labelSet' | 'also'> & {
  /** Category names: the sample has an annotation in one of them. */
  categories?: readonly string[];
  /** Category names: the evaluation's objects that count are of one of them. */
  evaluationCategories?: readonly string[];
  /** A prediction run's name: the annotation conditions apply to its predictions, not the ground truth. */
  predictions?: string;
  /** A second filter that must hold too: a saved view's, with the one of the request (curation/views.ts). */
  also?: SampleFilter;
};

/**
 * A filter as the APIs receive it: every field optional or null; `category` joins `categories`.
 * Fields marked "annotation" are conditions on one annotation: a sample matches when one of its
 * annotations meets all of them together (db/annotation-conditions.ts).
 */
export interface SampleFilterInput {
  /** annotation */
  category?: string | null;
  /** annotation */
  categories?: readonly string[] | null;
  split?: string | null;
  fileNameContains?: string | null;
  fileNameContainsIgnoreCase?: string | null;
  fileNameGlob?: string | null;
  minAnnotations?: number | null;
  maxAnnotations?: number | null;
  minWidth?: number | null;
  maxWidth?: number | null;
  minHeight?: number | null;
  maxHeight?: number | null;
  minPixels?: number | null;
  maxPixels?: number | null;
  /** annotation */
  isCrowd?: boolean | null;
  /** annotation: box area, w × h */
  minBboxArea?: number | null;
  maxBboxArea?: number | null;
  /** annotation: the file's `area` */
  minArea?: number | null;
  maxArea?: number | null;
  /** annotation: box w / h */
  minAspectRatio?: number | null;
  maxAspectRatio?: number | null;
  /** annotation: which label set the conditions apply to, by run name (default: the ground truth) */
  predictions?: string | null;
  /** annotation: a prediction's score; needs `predictions` */
  minConfidence?: number | null;
  maxConfidence?: number | null;
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
  /** Typed tests of the sample's metadata, all of which must hold (metadata-filter.ts). */
  metadata?: readonly MetadataConditionInput[] | null;
}

type FieldKind = 'string' | 'strings' | 'count' | 'bigCount' | 'number' | 'boolean' | 'evaluation' | 'metadata' | 'tags';

/**
 * Every filter field, its kind, and its REST query parameter (snake_case, as REST's JSON). A new
 * field is a line here, its SQL in db/ (samples.ts or annotation-conditions.ts), and its schema in
 * REST's FILTER_PARAM_SCHEMAS and GraphQL's SampleFilter.
 */
export const SAMPLE_FILTER_FIELDS: Readonly<Record<keyof SampleFilterInput, { param: string; kind: FieldKind }>> = {
  category: { param: 'category', kind: 'string' },
  categories: { param: 'categories', kind: 'strings' },
  split: { param: 'split', kind: 'string' },
  fileNameContains: { param: 'file_name_contains', kind: 'string' },
  fileNameContainsIgnoreCase: { param: 'file_name_contains_ignore_case', kind: 'string' },
  fileNameGlob: { param: 'file_name_glob', kind: 'string' },
  minAnnotations: { param: 'min_annotations', kind: 'count' },
  maxAnnotations: { param: 'max_annotations', kind: 'count' },
  minWidth: { param: 'min_width', kind: 'count' },
  maxWidth: { param: 'max_width', kind: 'count' },
  minHeight: { param: 'min_height', kind: 'count' },
  maxHeight: { param: 'max_height', kind: 'count' },
  minPixels: { param: 'min_pixels', kind: 'bigCount' },
  maxPixels: { param: 'max_pixels', kind: 'bigCount' },
  isCrowd: { param: 'is_crowd', kind: 'boolean' },
  minBboxArea: { param: 'min_bbox_area', kind: 'number' },
  maxBboxArea: { param: 'max_bbox_area', kind: 'number' },
  minArea: { param: 'min_area', kind: 'number' },
  maxArea: { param: 'max_area', kind: 'number' },
  minAspectRatio: { param: 'min_aspect_ratio', kind: 'number' },
  maxAspectRatio: { param: 'max_aspect_ratio', kind: 'number' },
  predictions: { param: 'predictions', kind: 'string' },
  minConfidence: { param: 'min_confidence', kind: 'number' },
  maxConfidence: { param: 'max_confidence', kind: 'number' },
  fileMissing: { param: 'file_missing', kind: 'boolean' },
  evaluation: { param: 'evaluation', kind: 'evaluation' },
  metadata: { param: 'metadata', kind: 'metadata' },
  tags: { param: 'tags', kind: 'tags' },
  tagsAll: { param: 'tags_all', kind: 'tags' },
  tagsNone: { param: 'tags_none', kind: 'tags' },
  annotationTags: { param: 'annotation_tags', kind: 'tags' },
};

const OUTCOMES = ['tp', 'fp', 'fn'] as const;
const ERRORS = ['classification', 'localization', 'both', 'duplicate', 'background', 'missed'] as const;

/** The SQL binds counts as 32-bit integers (pixel counts as 64-bit). */
const MAX_COUNT = 2_147_483_647;
const MAX_BIG_COUNT = Number.MAX_SAFE_INTEGER;

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
    if (spec.kind === 'metadata') {
      const conditions = toMetadataConditions(v as readonly MetadataConditionInput[], name(field));
      if (conditions.length > 0) filter.metadata = conditions;
      continue;
    }
    const max = spec.kind === 'count' ? MAX_COUNT : MAX_BIG_COUNT;
    if ((spec.kind === 'count' || spec.kind === 'bigCount') && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max)) {
      throw new BadInputError(`${name(field)} must be an integer between 0 and ${max}, got ${JSON.stringify(v)}`);
    }
    if (spec.kind === 'number' && !Number.isFinite(v)) throw new BadInputError(`${name(field)} must be a finite number, got ${JSON.stringify(v)}`);
    if (spec.kind === 'string' && v === '' && (field === 'fileNameGlob' || field === 'predictions')) throw new BadInputError(`${name(field)} must not be empty`);
    filter[field] = v;
  }
  if ((filter.minConfidence !== undefined || filter.maxConfidence !== undefined) && filter.predictions === undefined) {
    throw new BadInputError(`${name(filter.minConfidence !== undefined ? 'minConfidence' : 'maxConfidence')} needs ${name('predictions')} (the prediction run whose scores to test): ground truth has no confidence`);
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
    // Lists are sets (categories, metadata conditions): their order and repetition do not matter.
    .map(([k, v]) => [k, k === 'also' ? filterHash(v as SampleFilter) : Array.isArray(v) ? [...new Set(v.map((x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x))))].sort() : v] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 8);
}

/**
 * A filter input in the spelling of REST's query parameters, as [parameter, value] pairs (a list
 * is its parameter repeated): what a URL handed out for a filter carries (GraphQL's exportUrl).
 */
export function filterQueryParams(input: SampleFilterInput | null | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const [field, spec] of Object.entries(SAMPLE_FILTER_FIELDS) as [keyof SampleFilterInput, (typeof SAMPLE_FILTER_FIELDS)[keyof SampleFilterInput]][]) {
    const v = input?.[field];
    if (v === undefined || v === null) continue;
    if (spec.kind === 'evaluation') {
      const e = v as NonNullable<SampleFilterInput['evaluation']>;
      out.push([spec.param, e.id]);
      for (const o of e.has ?? []) out.push(['evaluation_has', o]);
      for (const k of e.errors ?? []) out.push(['evaluation_error', k]);
      for (const c of e.categories ?? []) out.push(['evaluation_category', c]);
    } else if (spec.kind === 'metadata') {
      for (const c of v as readonly MetadataConditionInput[]) out.push([spec.param, metadataParamText(c)]);
    } else if (Array.isArray(v)) {
      // A parameter given no times is no condition: `[]` (which matches nothing) has no spelling there.
      if (v.length === 0) throw new BadInputError(`${field}: an empty list selects no sample, and a URL cannot say so; leave the field out or name at least one`);
      for (const item of v) out.push([spec.param, String(item)]);
    } else {
      out.push([spec.param, String(v)]);
    }
  }
  return out;
}
