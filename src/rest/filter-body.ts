import { z } from '@hono/zod-openapi';
import { SAMPLE_FILTER_FIELDS, type SampleFilterInput } from '../services/datasets/filter.js';
import { BadInputError } from '../services/errors.js';

/**
 * The sample filter as a JSON body spells it (tagging, saved views): the query parameters of
 * `GET /samples` as keys, JSON values (`{"split": "train", "min_annotations": 1, "tags": ["a"]}`).
 * Both map onto the one filter of services/datasets/filter.ts.
 */

type Field = keyof SampleFilterInput;
type Kind = (typeof SAMPLE_FILTER_FIELDS)[Field]['kind'];

const KIND_SCHEMAS: Record<Kind, () => z.ZodType> = {
  string: () => z.string({ error: 'must be a string' }),
  strings: () => z.array(z.string({ error: 'must be a string' }), { error: 'must be a list of strings' }),
  tags: () => z.array(z.string({ error: 'must be a string' }), { error: 'must be a list of strings' }),
  count: () => z.number({ error: 'must be a number' }),
  bigCount: () => z.number({ error: 'must be a number' }),
  number: () => z.number({ error: 'must be a number' }),
  boolean: () => z.boolean({ error: 'must be true or false' }),
  evaluation: () => z.string({ error: 'must be an evaluation id' }),
  // As GraphQL's MetadataCondition: objects, not the `<path> <op> <JSON>` text of a query parameter.
  metadata: () =>
    z.array(
      z.strictObject({ path: z.string(), op: z.string(), value: z.unknown().optional(), values: z.unknown().optional() }),
      { error: 'must be a list of {path, op, value?, values?}' },
    ),
};

/** What `evaluation` asks of one object, as lists (the query parameters of the same names). */
const EVALUATION_PARTS = { evaluation_has: 'has', evaluation_error: 'errors', evaluation_category: 'categories' } as const;

const FIELDS = Object.keys(SAMPLE_FILTER_FIELDS) as Field[];
const PARAMS = [...FIELDS.map((f) => SAMPLE_FILTER_FIELDS[f].param), ...Object.keys(EVALUATION_PARTS)];

export const FilterBody = z
  .strictObject(
    {
      ...Object.fromEntries(FIELDS.map((f) => [SAMPLE_FILTER_FIELDS[f].param, KIND_SCHEMAS[SAMPLE_FILTER_FIELDS[f].kind]().nullable().optional()])),
      ...Object.fromEntries(Object.keys(EVALUATION_PARTS).map((k) => [k, z.array(z.string({ error: 'must be a string' })).nullable().optional()])),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? `has no field ${issue.keys.map((k) => `"${k}"`).join(', ')}; its fields are ${PARAMS.join(', ')}` : undefined) },
  )
  .openapi('SampleFilterBody', { description: 'A sample filter: the filter parameters of GET /samples as JSON (`evaluation_has`, `evaluation_error`, `evaluation_category` lists; `metadata` a list of `{path, op, value}`); `{}` selects every sample.' });

/** A strict JSON body: a field it does not know is named, with the ones it knows. */
export function strictBody<S extends z.ZodRawShape>(shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `has no field ${issue.keys.map((k) => `"${k}"`).join(', ')}; its fields are ${known}` : undefined),
  });
}

/** A body's filter as the filter module's input. */
export function filterBodyInput(body: Record<string, unknown>): SampleFilterInput {
  const input: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const v = body[SAMPLE_FILTER_FIELDS[f].param];
    if (v != null) input[f] = v;
  }
  const evaluation: Record<string, unknown> = { id: body.evaluation };
  for (const [param, part] of Object.entries(EVALUATION_PARTS)) {
    if (body[param] == null) continue;
    if (body.evaluation == null) throw new BadInputError(`filter.${param} needs filter.evaluation (the evaluation id)`);
    evaluation[part] = body[param];
  }
  if (body.evaluation != null) input.evaluation = evaluation;
  return input as SampleFilterInput;
}

/** The filter module's input in the body's spelling (how REST shows a saved view's filter). */
export function filterBodyJson(input: SampleFilterInput): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const v = input[f];
    if (v == null) continue;
    if (f === 'evaluation') {
      const e = v as NonNullable<SampleFilterInput['evaluation']>;
      out.evaluation = e.id;
      for (const [param, part] of Object.entries(EVALUATION_PARTS)) if (e[part] != null) out[param] = e[part];
    } else out[SAMPLE_FILTER_FIELDS[f].param] = v;
  }
  return out;
}

/** Errors name fields as the body spells them: `sampleIds` → `sample_ids`, filter fields by their parameter. */
export function bodySpelling(renames: Record<string, string> = {}): (field: string) => string {
  return (f) => renames[f] ?? SAMPLE_FILTER_FIELDS[f as Field]?.param ?? f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
