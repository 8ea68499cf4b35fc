import { BadInputError } from '../errors.js';

/** A key of the metadata object: letters, digits, `_` and `-` (what plugins and COCO files use). */
const KEY = /^[A-Za-z0-9_-]+$/;
const INDEX = /^\[(\d{1,6})\]/;
const MAX_LENGTH = 256;

/**
 * A metadata path as users write it (`camera.model`, `tags[0]`, `exif.gps.lat`) as the JSONPath
 * DuckDB's json_extract takes, every key quoted. Validated so that it names keys and indexes only:
 * the path is bound as a value, and a malformed one is answered with what a path looks like rather
 * than an empty result.
 */
export function metadataJsonPath(path: string): string {
  const bad = (why: string) =>
    new BadInputError(`path ${JSON.stringify(path)} is not a metadata path (${why}); write keys of letters, digits, _ and - separated by dots, each optionally followed by [index], e.g. "camera.model" or "tags[0]"`);
  if (typeof path !== 'string' || path.length === 0) throw bad('it is empty');
  if (path.length > MAX_LENGTH) throw bad(`it is longer than ${MAX_LENGTH} characters`);
  let json = '$';
  for (const part of path.split('.')) {
    const bracket = part.indexOf('[');
    const key = bracket === -1 ? part : part.slice(0, bracket);
    if (!KEY.test(key)) throw bad(key === '' ? 'a key is empty' : `${JSON.stringify(key)} is not a key`);
    json += `."${key}"`;
    for (let rest = bracket === -1 ? '' : part.slice(bracket); rest.length > 0; ) {
      const m = INDEX.exec(rest);
      if (!m) throw bad(`${JSON.stringify(rest)} is not an [index]`);
      json += `[${m[1]}]`;
      rest = rest.slice(m[0].length);
    }
  }
  return json;
}
