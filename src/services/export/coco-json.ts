import type { Row } from '../db/connection.js';

/**
 * The head of a COCO export (licenses, categories: few rows) as JSON text; images and annotations,
 * the bulk, DuckDB writes the same way (db/export.ts, db/json-text.ts): a field the row lacks is
 * left out rather than written as null, keys the file had that COCO does not define come back
 * from the row's extra JSON, and such a key that the row also has a column for wins.
 */

type Extra = Record<string, unknown> | null;

const parse = (text: unknown): Extra => (typeof text === 'string' ? (JSON.parse(text) as Extra) : null);

/** `,"key":value` for each key of `extra`. */
function extraFields(extra: Extra): string {
  if (extra === null) return '';
  let out = '';
  for (const k in extra) out += `,${JSON.stringify(k)}:${JSON.stringify(extra[k])}`;
  return out;
}

const str = (v: unknown) => JSON.stringify(v as string);

export function categoryJson(r: Row): string {
  const x = parse(r.extra);
  let out = `{"id":${r.category_id as number},"name":${str(r.name)}`;
  if (r.supercategory !== null && (x === null || !('supercategory' in x))) out += `,"supercategory":${str(r.supercategory)}`;
  return `${out}${extraFields(x)}}`;
}

export function licenseJson(r: Row): string {
  let out = `{"id":${r.license_id as number}`;
  if (r.name !== null) out += `,"name":${str(r.name)}`;
  if (r.url !== null) out += `,"url":${str(r.url)}`;
  return `${out}}`;
}
