import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../dist/services/db/connection.js';
import { tempDir } from '../helpers/env.js';

/**
 * ColumnChunk.joinedText, which reads a VARCHAR column's bytes straight out of DuckDB's vectors
 * (the export's text): strings kept inline (up to 12 bytes) and behind a pointer, multi-byte
 * UTF-8, empty strings and NULLs, across chunks of 2,048 rows.
 */

let db: Database;

beforeAll(async () => {
  db = await Database.open(path.join(tempDir(), 'joined.duckdb'));
});
afterAll(() => db?.close());

const value = (i: number): string | null => (i % 7 === 3 ? null : i % 5 === 0 ? '' : i % 2 ? `r${i}` : `ünï ${i} ${'x'.repeat(i % 30)} 😀`);

const SQL = (n: number) => `SELECT CASE WHEN i % 7 = 3 THEN NULL WHEN i % 5 = 0 THEN '' WHEN i % 2 = 1 THEN 'r' || i
  ELSE 'ünï ' || i || ' ' || repeat('x', (i % 30)::INTEGER) || ' 😀' END AS t FROM range(${n}) r(i) ORDER BY i`;

/** Every chunk of `sql`'s first column through joinedText, separated by `|`. */
async function joined(sql: string): Promise<{ text: string; chunks: number }> {
  const snapshot = await db.snapshot();
  const parts: Uint8Array[] = [];
  try {
    for await (const chunk of snapshot.chunks(sql)) parts.push(chunk.joinedText(0, Buffer.from('|'), parts.length === 0));
  } finally {
    snapshot.close();
  }
  return { text: Buffer.concat(parts).toString('utf8'), chunks: parts.length };
}

describe('ColumnChunk.joinedText', () => {
  const n = 5_000;
  const expected = Array.from({ length: n }, (_, i) => value(i)).filter((v) => v !== null).join('|');

  it("gives every non-NULL row's UTF-8 bytes in order, a separator between them: strings a query builds", async () => {
    const { text, chunks } = await joined(SQL(n));
    expect(chunks).toBe(Math.ceil(n / 2048));
    expect(text).toBe(expected);
  });

  it('the same for strings read from a table, wherever its storage keeps them', async () => {
    const tx = await db.begin();
    await tx.run(`CREATE TABLE stored AS SELECT row_number() OVER () AS i, t FROM (${SQL(n)})`);
    await tx.commit();
    expect((await joined('SELECT t FROM stored ORDER BY i')).text).toBe(expected);
  });
});
