/**
 * SQL that writes values and objects as JSON text exactly as JavaScript writes them, so that
 * DuckDB writes an export's rows (db/export.ts) and the file is what `JSON.stringify` and
 * template literals would give (tests/export/json-text.test.ts holds the values against
 * JavaScript on millions of doubles and every code point). DuckDB's `to_json` (yyjson) already
 * writes the shortest text that parses back to the same double, and escapes strings as
 * JSON.stringify does; what differs is mended below.
 */

/** Doubles below this magnitude that are integers: their BIGINT text is String's. */
const SAFE_INTEGER = 9_007_199_254_740_992;

/**
 * A DOUBLE as `String(x)` (NULL for NULL). to_json writes a fraction as String does; integers it
 * writes with `.0`, so they are written as BIGINT text below 2^53, and above it (where String
 * pads the shortest digits with zeros, as to_json does before its `.0`) with the `.0` cut; from
 * 1e21 String's exponent has a sign (`1e+21`). -0 is `0`. Fractions first: most boxes have one.
 */
export function jsonNumber(x: string): string {
  const json = `to_json(${x})::VARCHAR`;
  return `CASE WHEN ${x} <> trunc(${x}) THEN ${json}
    WHEN abs(${x}) < ${SAFE_INTEGER} THEN ${x}::BIGINT::VARCHAR
    WHEN abs(${x}) >= 1e21 THEN replace(${json}, 'e', 'e+')
    ELSE rtrim(rtrim(${json}, '0'), '.') END`;
}

/** Control characters to_json escapes in upper-case hex, where JSON.stringify writes lower case. */
const UPPER_ESCAPES = ['0B', '0E', '0F', '1A', '1B', '1C', '1D', '1E', '1F'];

/**
 * A VARCHAR as `JSON.stringify(s)` (NULL for NULL). to_json differs only in the case of nine
 * `\u00XX` escapes; they are lowered with every escaped backslash (`\\`) set aside first, so a
 * string that holds the text `\u001F` itself is not touched. Only strings whose text holds `\u00`
 * pay for it.
 */
export function jsonString(s: string): string {
  const json = `to_json(${s})::VARCHAR`;
  let fixed = `replace(${json}, '\\\\', chr(0))`;
  for (const hex of UPPER_ESCAPES) fixed = `replace(${fixed}, '\\u00${hex}', '\\u00${hex.toLowerCase()}')`;
  return `CASE WHEN contains(${json}, '\\u00') THEN replace(${fixed}, chr(0), '\\\\') ELSE ${json} END`;
}

/**
 * The keys of a JSON object column written by JSON.stringify (an `extra` or `metadata` column:
 * every writer stores JSON.stringify's text), as `,"key":value…` after a row's own keys, or ''.
 * That text is already what `,${JSON.stringify(k)}:${JSON.stringify(v)}` gives key by key.
 */
function jsonExtraKeys(column: string): string {
  return `CASE WHEN ${column} IS NULL OR ${column} = '{}' THEN '' ELSE ',' || substr(${column}, 2, length(${column}) - 2) END`;
}

/** True when the row writes its own `key`: the JSON object column does not hold that key. */
function ownKey(column: string, key: string): string {
  return `(${column} IS NULL OR NOT json_exists(${column}, '$.${key}'))`;
}

/**
 * A key of a JSON object and its value: SQL text, NULL when the row has no such value (the key is
 * then left out, never written as null). `nullWhen`: a column that is NULL exactly when the value
 * is (cheaper to test than the value); without it the value is never NULL.
 */
export interface JsonField {
  key: string;
  value: string;
  nullWhen?: string;
}

/**
 * A row's JSON object: `head` (SQL texts: `{` and the keys every row has), its `fields`, then the
 * keys of its JSON object column `other` (a row's keys that have no column); a field that column
 * also holds is written from there, once. One concat() per row (chained || builds a string per
 * step), and rows without other keys, most, take a branch that does not look into that column.
 */
export function jsonObject(head: string[], fields: JsonField[], other: string): string {
  const plain = fields.flatMap((f) => [f.nullWhen ? `CASE WHEN ${f.nullWhen} IS NULL THEN NULL ELSE ',"${f.key}":' END` : `',"${f.key}":'`, f.value]);
  const owned = fields.map((f) => `CASE WHEN ${ownKey(other, f.key)} THEN coalesce(',"${f.key}":' || ${f.value}, '') ELSE '' END`);
  return `CASE WHEN ${other} IS NULL THEN concat(${[...head, ...plain, `'}'`].join(', ')})
    ELSE concat(${[...head, ...owned, jsonExtraKeys(other), `'}'`].join(', ')}) END`;
}
