import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../dist/services/db/connection.js';
import { jsonNumber, jsonString } from '../../dist/services/db/json-text.js';
import { tempDir } from '../helpers/env.js';

/**
 * The SQL the export writes values with (db/json-text.ts), run by DuckDB, gives JavaScript's own
 * text: String(x) for every double of the kinds boxes, areas and scores hold and far beyond them,
 * JSON.stringify(s) for every code point and for the escapes DuckDB writes differently.
 */

let db: Database;

beforeAll(async () => {
  db = await Database.open(path.join(tempDir(), 'json-text.duckdb'));
});
afterAll(() => db?.close());

/** A fixed linear congruential sequence. */
function random(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** `sql(column)` over `values` in a table of (i, v), answered in order. */
async function written(values: readonly (number | string)[], type: 'DOUBLE' | 'VARCHAR', sql: (column: string) => string): Promise<string[]> {
  const tx = await db.begin();
  try {
    await tx.run(`CREATE TEMP TABLE v (i INTEGER, v ${type})`);
    const a = await tx.appender('v');
    values.forEach((v, i) => {
      a.num(0, i);
      if (typeof v === 'number') a.num(1, v);
      else a.text(1, v);
      a.endRow();
    });
    a.close();
    const rows = await tx.query(`SELECT ${sql('v')} AS t FROM v ORDER BY i`);
    return rows.map((r) => r.t as string);
  } finally {
    await tx.rollback();
  }
}

describe('the text DuckDB writes for the export', () => {
  it('is String(x) for 2.8 million doubles: decimals, products, integers, tiny and huge, bounds of each form', async () => {
    const next = random(11);
    const values = [0, -0, 1, -1, 0.1, 0.3, 0.1 + 0.2, 1e-7, 1.5e-7, 1e-6, 9.99e-7, 5e-324, 1.7976931348623157e308, 2 ** 53, 2 ** 53 + 2, -(2 ** 53),
      2 ** 53 - 1, 1e15, 1e16, 1e20, 1e21, 9.99e20, -1e21, 123456789.1234, 123456789012345680000, 299.99999999999994];
    for (let i = 0; i < 400_000; i++) {
      const w = Number((next() * 1000).toFixed(1 + (i % 6)));
      values.push(w, w * Number((next() * 1000).toFixed(2)), -w, next() * 1e12, Math.round(next() * 1e6));
      values.push(next() * 10 ** Math.floor(next() * 60 - 30), (next() - 0.5) * 2 ** Math.floor(next() * 2000 - 1000));
    }
    const text = await written(values, 'DOUBLE', jsonNumber);
    const wrong = values.flatMap((x, i) => (text[i] === String(x) ? [] : [[x, text[i], String(x)]]));
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('is JSON.stringify(s) for every code point, controls, backslashes and escapes that look like escapes', async () => {
    const values: string[] = [];
    for (let cp = 0; cp < 0x30000; cp += 64) {
      let s = '';
      for (let c = cp; c < cp + 64; c++) if (c < 0xd800 || c >= 0xe000) s += String.fromCodePoint(c);
      values.push(s);
    }
    values.push('', 'a/b', 'a\\b', '"q"', '\u2028\u2029', 'x\u007fy', 'é', '😀', '\\u000B\u000b', '\\\u000b\\u001F', 'x\\\\u001Fy\u001f');
    for (let c = 0; c < 32; c++) values.push(String.fromCharCode(c), `\\${String.fromCharCode(c)}u00${c.toString(16).padStart(2, '0').toUpperCase()}\\u001a`);
    const text = await written(values, 'VARCHAR', jsonString);
    const wrong = values.flatMap((s, i) => (text[i] === JSON.stringify(s) ? [] : [[JSON.stringify(s), text[i]]]));
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});
