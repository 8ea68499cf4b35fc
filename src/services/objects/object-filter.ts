import { createHash } from 'node:crypto';
import { DETECTION_OUTCOMES, ERROR_KINDS, GROUND_TRUTH_OUTCOMES } from '../db/evaluations.js';
import type { ObjectSortField } from '../db/objects.js';
import { BadInputError } from '../errors.js';
import { isId } from '../ids.js';
import type { SampleFilter } from '../datasets/filter.js';

/**
 * The object-level conditions and sorts of the object view, in one place (docs/curation.md,
 * "Objects"): REST's `object_*` parameters and GraphQL's ObjectFilter/ObjectSort are two spellings
 * of these, checked here with the same messages. The sample filter (datasets/filter.ts) says which
 * samples; these say which of their annotations. When the sample filter grows annotation-level
 * conditions of its own, they still select samples; these select rows.
 */
export interface ObjectFilterInput {
  /** Category names: the object is in one of them. */
  categories?: readonly string[] | null;
  /** `ground_truth` (the default) or a prediction run's name; with an evaluation, its run. */
  labelSet?: string | null;
  /** COCO `area` (the segment's area for ground truth, the box's for predictions), px². */
  minArea?: number | null;
  maxArea?: number | null;
  minConfidence?: number | null;
  maxConfidence?: number | null;
  isCrowd?: boolean | null;
  /** The object's outcome in an evaluation (IoU 0.5, all areas, 100 detections). */
  evaluation?: { id: string; outcomes?: readonly string[] | null; errors?: readonly string[] | null } | null;
}

/** Checked and normalised: absent fields left out, name lists deduplicated and sorted. */
export interface ObjectFilter {
  categories?: string[];
  labelSet?: string;
  minArea?: number;
  maxArea?: number;
  minConfidence?: number;
  maxConfidence?: number;
  isCrowd?: boolean;
  evaluation?: { id: string; outcomes?: string[]; errors?: string[] };
}

export interface ObjectSort {
  field: ObjectSortField;
  descending: boolean;
}

export const OBJECT_SORT_FIELDS: readonly ObjectSortField[] = ['file', 'area', 'confidence', 'iou'];
export const OUTCOME_NAMES = [...new Set<string>([...DETECTION_OUTCOMES, ...GROUND_TRUTH_OUTCOMES])];
export const ERROR_NAMES: readonly string[] = ERROR_KINDS;

const NUMBER_FIELDS = ['minArea', 'maxArea', 'minConfidence', 'maxConfidence'] as const;

/** `name` spells a field as the caller's API does, for errors. */
export function toObjectFilter(input: ObjectFilterInput | null | undefined, name: (field: string) => string = (f) => f): ObjectFilter {
  if (!input) return {};
  const filter: ObjectFilter = {};
  if (input.categories != null) filter.categories = [...new Set(input.categories)].sort();
  if (input.labelSet != null) {
    if (input.labelSet.trim() === '') throw new BadInputError(`${name('labelSet')} must name ground_truth or a prediction run, got ""`);
    filter.labelSet = input.labelSet;
  }
  for (const field of NUMBER_FIELDS) {
    const v = input[field];
    if (v == null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadInputError(`${name(field)} must be a finite number, got ${JSON.stringify(v)}`);
    filter[field] = v;
  }
  if (input.isCrowd != null) filter.isCrowd = input.isCrowd;
  const e = input.evaluation;
  if (e != null) {
    if (typeof e.id !== 'string' || !isId(e.id)) throw new BadInputError(`${name('evaluation')}: ${JSON.stringify(e.id)} is not an evaluation id`);
    filter.evaluation = { id: e.id };
    if (e.outcomes != null) filter.evaluation.outcomes = names(e.outcomes, OUTCOME_NAMES, `${name('evaluation')} outcome`);
    if (e.errors != null) filter.evaluation.errors = names(e.errors, ERROR_NAMES, `${name('evaluation')} error`);
  }
  return filter;
}

function names(given: readonly string[], known: readonly string[], label: string): string[] {
  const wanted = [...new Set(given.map((o) => String(o).toLowerCase()))].sort();
  const bad = wanted.find((o) => !known.includes(o));
  if (bad !== undefined) throw new BadInputError(`${label}: ${JSON.stringify(bad)} is not one of ${known.join(', ')}`);
  if (wanted.length === 0) throw new BadInputError(`${label}: name at least one of ${known.join(', ')}, or leave it out for any`);
  return wanted;
}

export function toObjectSort(input: { field?: string | null; direction?: string | null } | null | undefined, name: (field: string) => string = (f) => f): ObjectSort {
  const field = (input?.field ?? 'file').toLowerCase();
  if (!(OBJECT_SORT_FIELDS as readonly string[]).includes(field)) {
    throw new BadInputError(`${name('field')}: ${JSON.stringify(input?.field)} is not one of ${OBJECT_SORT_FIELDS.join(', ')}`);
  }
  const direction = (input?.direction ?? 'asc').toLowerCase();
  if (direction !== 'asc' && direction !== 'desc') throw new BadInputError(`${name('direction')}: ${JSON.stringify(input?.direction)} is not asc or desc`);
  return { field: field as ObjectSortField, descending: direction === 'desc' };
}

/** A short, stable hash of a whole view (which samples, which objects, which order): cursors carry it. */
export function objectViewHash(samples: SampleFilter, objects: ObjectFilter, sort: ObjectSort): string {
  const canonical = (o: object) => Object.entries(o).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
  const sampleCanon = canonical(samples).map(([k, v]) => [k, Array.isArray(v) ? [...new Set(v as string[])].sort() : v]);
  return createHash('sha256').update(JSON.stringify([sampleCanon, canonical(objects), sort])).digest('base64url').slice(0, 8);
}
