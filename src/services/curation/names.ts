import { BadInputError } from '../errors.js';

/** Longest tag or view name, in characters (after trimming). */
export const NAME_MAX = 100;
/** Tags one call may add, remove or filter on. */
export const TAGS_MAX = 100;

// Control, format, surrogate, private-use and unassigned code points: invisible or unprintable,
// so two names that look the same could differ; everything else (any script, spaces inside,
// punctuation, emoji) is allowed.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}]/u;

/**
 * A tag or view name as stored: trimmed, 1..NAME_MAX characters, printable. `label` names the
 * input in the caller's spelling for the error (docs/curation.md, "Names").
 */
export function checkName(value: unknown, label: string): string {
  if (typeof value !== 'string') throw new BadInputError(`${label} must be a string, got ${JSON.stringify(value)}`);
  const name = value.trim();
  if (name.length === 0) throw new BadInputError(`${label} must not be empty or only spaces`);
  if ([...name].length > NAME_MAX) throw new BadInputError(`${label} must be at most ${NAME_MAX} characters, got ${[...name].length}`);
  const bad = UNPRINTABLE.exec(name);
  if (bad) throw new BadInputError(`${label} must be printable text: ${JSON.stringify(value)} holds U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
  return name;
}

/** A list of tags checked one by one, deduplicated and sorted; at most TAGS_MAX. */
export function checkTags(values: readonly unknown[], label: string, options: { nonEmpty?: boolean } = {}): string[] {
  if (!Array.isArray(values)) throw new BadInputError(`${label} must be a list of tags, got ${JSON.stringify(values)}`);
  if (options.nonEmpty && values.length === 0) throw new BadInputError(`${label} must name at least one tag`);
  if (values.length > TAGS_MAX) throw new BadInputError(`${label} may name at most ${TAGS_MAX} tags, got ${values.length}`);
  return [...new Set(values.map((v, i) => checkName(v, `${label}[${i}]`)))].sort();
}
