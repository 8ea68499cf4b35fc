import type { MetadataCondition, MetadataOp, MetadataValue } from '../db/metadata-conditions.js';
import { BadInputError } from '../errors.js';

/**
 * Conditions on the sample metadata that plugins write (and unknown image keys of the file):
 * a JSON path, an operator and typed values. Paths follow a strict grammar, so what reaches
 * DuckDB's JSON functions (bound, never spliced) is always a plain member/index chain:
 *
 *   path  := [ "$" ] step+   where the first step may omit its dot (`a.b[0]` is `$.a.b[0]`)
 *   step  := "." name | "[" index "]"
 *   name  := [A-Za-z0-9_-]+      index := 0..9999
 *
 * Keys come out quoted (`$."a"."b"[0]`), so a key of digits or with `-` names a member, never an
 * index or an operator. The filter and the aggregations (metadata values) read paths with it.
 */
export interface MetadataConditionInput {
  path: string;
  op: string;
  value?: unknown;
  /** `in`: a list. */
  values?: unknown;
}

export const METADATA_OPS: readonly MetadataOp[] = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'exists'];
const MAX_PATH = 256;
const MAX_STEPS = 16;
const MAX_IN_VALUES = 100;
const MAX_CONDITIONS = 20;
const STEP = /^(?:\.([A-Za-z0-9_-]+)|\[(\d{1,4})\])/;

/** `$."a"."b"[0]` from any accepted spelling, or a BAD_USER_INPUT error naming the problem. */
export function normalizeMetadataPath(raw: string, label: string): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_PATH) throw new BadInputError(`${label}: a path must be 1 to ${MAX_PATH} characters, like $.camera.iso or tags[0]`);
  let rest = raw.startsWith('$') ? raw.slice(1) : /^[A-Za-z0-9_-]/.test(raw) ? `.${raw}` : raw;
  let path = '$';
  let steps = 0;
  while (rest.length > 0) {
    const m = STEP.exec(rest);
    if (!m) {
      throw new BadInputError(
        `${label}: ${JSON.stringify(raw)} is not a metadata path: at ${JSON.stringify(rest.slice(0, 20))}, expected .name (letters, digits, _, -) or [index]; e.g. $.camera.iso or tags[0]`,
      );
    }
    path += m[1] !== undefined ? `."${m[1]}"` : `[${Number(m[2])}]`;
    rest = rest.slice(m[0].length);
    if (++steps > MAX_STEPS) throw new BadInputError(`${label}: ${JSON.stringify(raw)} has more than ${MAX_STEPS} steps`);
  }
  if (steps === 0) throw new BadInputError(`${label}: name a member of the metadata, like $.camera.iso, not the whole object`);
  return path;
}

function checkValue(v: unknown, label: string): MetadataValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  throw new BadInputError(`${label}: ${JSON.stringify(v) ?? 'nothing'} is not a value to compare; use a number, a string or true/false`);
}

/** One condition, checked: the operator known, the values of a type it can compare. */
export function toMetadataCondition(input: MetadataConditionInput, label: string): MetadataCondition {
  const path = normalizeMetadataPath(input.path, `${label}.path`);
  const op = String(input.op).toLowerCase() as MetadataOp;
  if (!METADATA_OPS.includes(op)) throw new BadInputError(`${label}.op: ${JSON.stringify(input.op)} is not an operator; use one of ${METADATA_OPS.join(', ')}`);
  const hasValue = input.value !== undefined && input.value !== null;
  if (op === 'in') {
    if (hasValue || !Array.isArray(input.values) || input.values.length === 0 || input.values.length > MAX_IN_VALUES) {
      throw new BadInputError(`${label}: in takes values, a list of 1 to ${MAX_IN_VALUES} numbers, strings or booleans (and no value)`);
    }
    return { path, op, values: input.values.map((v, i) => checkValue(v, `${label}.values[${i}]`)) };
  }
  if (input.values != null) throw new BadInputError(`${label}: values goes with in; ${op} takes one value`);
  if (op === 'exists') {
    if (hasValue && typeof input.value !== 'boolean') throw new BadInputError(`${label}.value: exists takes true (the default) or false`);
    return { path, op, values: [hasValue ? (input.value as boolean) : true] };
  }
  if (!hasValue) throw new BadInputError(`${label}.value: ${op} needs a value (a number, a string or true/false)`);
  const value = checkValue(input.value, `${label}.value`);
  if (typeof value === 'boolean' && op !== 'eq' && op !== 'ne') throw new BadInputError(`${label}: ${op} compares numbers or strings; a boolean takes eq or ne`);
  return { path, op, values: [value] };
}

export function toMetadataConditions(inputs: readonly MetadataConditionInput[], label: string): MetadataCondition[] {
  if (inputs.length > MAX_CONDITIONS) throw new BadInputError(`${label}: at most ${MAX_CONDITIONS} conditions`);
  return inputs.map((c, i) => toMetadataCondition(c, `${label}[${i}]`));
}

/**
 * REST's spelling of a condition: `<path> <op> [<JSON value>]`, e.g. `$.orientation eq "portrait"`,
 * `aspect_ratio gte 1.5`, `$.lens exists`, `$.iso in [100,200]`. The value is JSON, so its type
 * is explicit (`"3"` is a string, `3` a number).
 */
/** The text parseMetadataParam() reads back as the same condition (`$.orientation eq "portrait"`). */
export function metadataParamText(c: MetadataConditionInput): string {
  const value = c.values !== undefined ? c.values : c.value;
  return value === undefined ? `${c.path} ${c.op}` : `${c.path} ${c.op} ${JSON.stringify(value)}`;
}

export function parseMetadataParam(text: string, label: string): MetadataConditionInput {
  const m = /^\s*(\S+)\s+([A-Za-z]+)(?:\s+(.+?))?\s*$/s.exec(text);
  if (!m) throw new BadInputError(`${label}: ${JSON.stringify(text)} is not a condition; write <path> <op> [<JSON value>], e.g. $.orientation eq "portrait"`);
  const [, path, op, json] = m;
  if (json === undefined) return { path: path!, op: op! };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new BadInputError(`${label}: ${JSON.stringify(json)} is not a JSON value; quote strings ("portrait"), write numbers and true/false as they are`);
  }
  return Array.isArray(value) && op!.toLowerCase() === 'in' ? { path: path!, op: op!, values: value } : { path: path!, op: op!, value };
}
