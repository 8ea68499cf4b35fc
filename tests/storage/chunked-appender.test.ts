import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkedAppender } from '../../dist/services/db/chunked-appender.js';
import { tempDir } from '../helpers/env.js';

/**
 * The appender every ingest writes through fills DuckDB's vectors and validity bitmaps itself:
 * each cell read back from a real database file must be the one written, across chunk (2048 rows)
 * and flush (65,536 rows) boundaries, with NULLs that come and go between chunks.
 */

const ROWS = 70_000;
let instance: DuckDBInstance;
let conn: DuckDBConnection;

beforeAll(async () => {
  instance = await DuckDBInstance.create(path.join(tempDir(), 'appender.duckdb'));
  conn = await instance.connect();
});
afterAll(() => {
  conn.closeSync();
  instance.closeSync();
});

/** Row r's values; a pattern per column so that NULLs start, stop and cluster at different rows. */
function expected(r: number) {
  return {
    i: r,
    d: r % 7 === 0 ? null : r * 1.25 - 5e11,
    n: r >= 2048 && r < 4096 ? null : r % 1000, // a whole chunk of NULLs, then none again
    b: r % 3 === 0,
    u: r % 256,
    // Only the last rows hold a NULL: the column was valid for 34 chunks first.
    s: r > ROWS - 10 ? null : r % 5 === 0 ? `ünï ${r} ${'x'.repeat(r % 40)}` : `r${r}`,
    e: r % 11 === 0 ? '' : null,
    k: ['a', 'b', 'c'][r % 3],
  };
}

describe('ChunkedAppender', () => {
  it('writes every cell of 70,000 rows of each column type as given, NULLs included', async () => {
    await conn.run(`CREATE TYPE abc AS ENUM ('a', 'b', 'c')`);
    await conn.run(`CREATE TABLE t (i INTEGER NOT NULL, d DOUBLE, n INTEGER, b BOOLEAN NOT NULL, u UTINYINT NOT NULL, s VARCHAR, e VARCHAR, k abc NOT NULL)`);
    const a = new ChunkedAppender(await conn.createAppender('t'));
    for (let r = 0; r < ROWS; r++) {
      const x = expected(r);
      a.num(0, x.i);
      a.num(1, x.d ?? NaN);
      a.num(2, x.n ?? NaN);
      a.bool(3, x.b);
      a.num(4, x.u);
      a.text(5, x.s);
      a.text(6, x.e);
      a.num(7, r % 3); // an ENUM's code
      a.endRow();
    }
    a.close();

    const rows = (await conn.runAndReadAll('SELECT i, d, n, b, u, s, e, k FROM t ORDER BY i')).getRowObjectsJS();
    expect(rows).toHaveLength(ROWS);
    const wrong = rows.filter((row, r) => JSON.stringify(row) !== JSON.stringify(expected(r)));
    expect(wrong.slice(0, 3)).toEqual([]);
    const [nulls] = (await conn.runAndReadAll(
      'SELECT count(*) FILTER (d IS NULL) AS d, count(*) FILTER (n IS NULL) AS n, count(*) FILTER (s IS NULL) AS s, count(e) AS e FROM t',
    )).getRowObjectsJS();
    expect(nulls).toEqual({ d: BigInt(Math.ceil(ROWS / 7)), n: 2048n, s: 9n, e: BigInt(Math.ceil(ROWS / 11)) });
  });

  it('rejects a column type it cannot write, naming it', async () => {
    await conn.run('CREATE TABLE w (t TIMESTAMP)');
    const raw = await conn.createAppender('w');
    expect(() => new ChunkedAppender(raw)).toThrow(/cannot write DuckDB type TIMESTAMP/);
    raw.closeSync();
  });

  it('discard() leaves none of its rows once the transaction rolls back', async () => {
    await conn.run('CREATE TABLE r (i INTEGER NOT NULL)');
    await conn.run('BEGIN TRANSACTION');
    const a = new ChunkedAppender(await conn.createAppender('r'));
    for (let r = 0; r < 5000; r++) {
      a.num(0, r);
      a.endRow();
    }
    a.discard();
    await conn.run('ROLLBACK');
    expect((await conn.runAndReadAll('SELECT count(*) AS n FROM r')).getRowObjectsJS()).toEqual([{ n: 0n }]);
  });
});
