import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { SEGMENTATION_KINDS } from '../../src/services/records/columns.js';
import { Database } from '../../dist/services/db/connection.js';
import { SCHEMA_VERSION } from '../../dist/services/db/schema.js';
import { openTestEnv, tempDir } from '../helpers/env.js';

/**
 * A database written by an earlier DataVisor opens with its data intact: schema version 1 stored
 * `segmentation_kind` and `source` as text; version 2 stores the kind as an ENUM and computes
 * `source` from `score`.
 */

// The annotations table as schema version 1 created it.
const V1_ANNOTATIONS = `CREATE TABLE annotations (
  dataset_id VARCHAR NOT NULL, sample_ord INTEGER NOT NULL, ord INTEGER NOT NULL, annotation_id BIGINT NOT NULL,
  image_id BIGINT NOT NULL, category_id BIGINT NOT NULL, bbox_x DOUBLE, bbox_y DOUBLE, bbox_w DOUBLE, bbox_h DOUBLE,
  area DOUBLE, is_crowd BOOLEAN NOT NULL, segmentation_kind VARCHAR NOT NULL, polygon_count INTEGER NOT NULL,
  point_count INTEGER NOT NULL, num_keypoints INTEGER, score DOUBLE, source VARCHAR NOT NULL, extra VARCHAR)`;

async function v1Database(rows: number): Promise<string> {
  const file = path.join(tempDir(), 'v1.duckdb');
  const instance = await DuckDBInstance.create(file);
  const c = await instance.connect();
  await c.run('CREATE TABLE schema_version (version INTEGER NOT NULL)');
  await c.run('INSERT INTO schema_version VALUES (1)');
  await c.run(V1_ANNOTATIONS);
  await c.run(
    `INSERT INTO annotations SELECT 'd1', i // 3, i, 1000 + i, 7 + i // 3, i % 80, i, 1, 2, 3, 6, i % 5 = 0,
       ['none', 'polygon', 'rle', 'compressed_rle'][i % 4 + 1], 1, 8, NULL,
       CASE WHEN i % 2 = 0 THEN NULL ELSE 0.5 END, CASE WHEN i % 2 = 0 THEN 'ground_truth' ELSE 'prediction' END,
       CASE WHEN i = 4 THEN '{"k":1}' END
     FROM range(${rows}) t(i)`,
  );
  c.closeSync();
  instance.closeSync();
  return file;
}

describe('schema migrations', () => {
  it('upgrades a version 1 database: every annotation kept, in order, kinds and sources as they were', async () => {
    const file = await v1Database(5000);
    const db = await Database.open(file);
    try {
      expect(await db.query('SELECT max(version) AS v FROM schema_version')).toEqual([{ v: SCHEMA_VERSION }]);
      const rows = await db.query('SELECT ord, sample_ord, segmentation_kind, source, score, extra FROM annotations');
      expect(rows).toHaveLength(5000);
      // Stored order is kept (no ORDER BY above): readers rely on the table being sorted by sample.
      expect(rows.every((r, i) => r.ord === i)).toBe(true);
      expect(rows.slice(0, 5)).toEqual([
        { ord: 0, sample_ord: 0, segmentation_kind: 'none', source: 'ground_truth', score: null, extra: null },
        { ord: 1, sample_ord: 0, segmentation_kind: 'polygon', source: 'prediction', score: 0.5, extra: null },
        { ord: 2, sample_ord: 0, segmentation_kind: 'rle', source: 'ground_truth', score: null, extra: null },
        { ord: 3, sample_ord: 1, segmentation_kind: 'compressed_rle', source: 'prediction', score: 0.5, extra: null },
        { ord: 4, sample_ord: 1, segmentation_kind: 'none', source: 'ground_truth', score: null, extra: '{"k":1}' },
      ]);
      const [type] = await db.query(`SELECT data_type FROM information_schema.columns WHERE table_name = 'annotations' AND column_name = 'segmentation_kind'`);
      expect(type!.data_type).toMatch(/^ENUM/);
    } finally {
      await db.close();
    }
    // Opening again finds version 3 and changes nothing.
    const again = await Database.open(file);
    try {
      expect(await again.query('SELECT count(*)::INTEGER AS n, count(DISTINCT version)::INTEGER AS versions FROM schema_version')).toEqual([{ n: SCHEMA_VERSION, versions: SCHEMA_VERSION }]);
      expect(await again.query('SELECT count(*)::INTEGER AS n FROM annotations')).toEqual([{ n: 5000 }]);
    } finally {
      await again.close();
    }
  });

  it('upgrades a version 2 file written by the DataVisor of session 5: rows kept, revision 0, ground truth as label set 0', async () => {
    const file = path.join(tempDir(), 'v2.duckdb');
    fs.writeFileSync(file, zlib.gunzipSync(fs.readFileSync(path.resolve(import.meta.dirname, '../fixtures/db/v2-rbc-test.duckdb.gz'))));
    const before = await DuckDBInstance.create(file);
    const c = await before.connect();
    const count = async (sql: string) => Number((await c.runAndReadAll(sql)).getRows()[0]![0]);
    expect(await count('SELECT max(version) FROM schema_version')).toBe(2);
    const annotationsBefore = (await c.runAndReadAll('SELECT ord, sample_ord, annotation_id, category_id, bbox_x, bbox_w, score FROM annotations ORDER BY ord')).getRowObjectsJS();
    c.closeSync();
    before.closeSync();
    expect(annotationsBefore).toHaveLength(221);

    const db = await Database.open(file);
    try {
      expect(await db.query('SELECT max(version) AS v FROM schema_version')).toEqual([{ v: SCHEMA_VERSION }]);
      expect(await db.query('SELECT id, name, image_count, annotation_count, category_count, revision FROM datasets')).toEqual([
        { id: '2nozxnl53r65rgqo', name: 'rbc-test', image_count: 10, annotation_count: 221, category_count: 3, revision: 0 },
      ]);
      const after = await db.query('SELECT ord, sample_ord, annotation_id, category_id, bbox_x, bbox_w, score FROM annotations ORDER BY ord');
      expect(after).toEqual(annotationsBefore.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))));
      expect(await db.query('SELECT count(*)::INTEGER AS n FROM annotations WHERE label_set = 0')).toEqual([{ n: 221 }]);
      expect(await db.query('SELECT dataset_id, label_set, name, kind, annotation_count FROM label_sets')).toEqual([
        { dataset_id: '2nozxnl53r65rgqo', label_set: 0, name: 'ground_truth', kind: 'ground_truth', annotation_count: 221 },
      ]);
    } finally {
      db.close();
    }
  });

  it('upgrades a version 3 file written by the DataVisor of session 6: rows kept, empty tag and view tables that take rows', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'v3.duckdb');
    fs.writeFileSync(file, zlib.gunzipSync(fs.readFileSync(path.resolve(import.meta.dirname, '../fixtures/db/v3-rbc-test.duckdb.gz'))));
    const dataset = 'girut7tevt42jgm7';
    const read = async (q: (sql: string) => Promise<unknown[]>) => ({
      datasets: await q('SELECT id, name, image_count, annotation_count, revision FROM datasets'),
      labelSets: await q('SELECT label_set, name, annotation_count FROM label_sets ORDER BY label_set'),
      annotations: await q('SELECT ord, sample_ord, category_id, bbox_x, score, label_set FROM annotations ORDER BY ord'),
    });
    const before = await DuckDBInstance.create(file);
    const c = await before.connect();
    const plain = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
    expect(Number((await c.runAndReadAll('SELECT max(version) FROM schema_version')).getRows()[0]![0])).toBe(3);
    const old = await read(async (sql) => plain((await c.runAndReadAll(sql)).getRowObjectsJS()));
    c.closeSync();
    before.closeSync();
    expect(old.datasets).toEqual([{ id: dataset, name: 'rbc-test', image_count: 10, annotation_count: 221, revision: 1 }]);
    expect(old.annotations).toHaveLength(221 + 23);

    const db = await Database.open(file);
    try {
      expect(await db.query('SELECT max(version) AS v FROM schema_version')).toEqual([{ v: 4 }]);
      expect(await read((sql) => db.query(sql))).toEqual(old);
      for (const table of ['sample_tags', 'annotation_tags', 'views']) expect(await db.query(`SELECT count(*)::INTEGER AS n FROM ${table}`)).toEqual([{ n: 0 }]);
    } finally {
      await db.close();
    }
    // The upgraded file serves tags and views through the services.
    const env = await openTestEnv({ DATAVISOR_DB_PATH: file });
    try {
      const { dv } = env;
      const tagged = await dv.tags.tagSamples(dataset, { filter: { minAnnotations: 25 } }, ['many']);
      const expected = Number((await dv.db.query('SELECT count(*) AS n FROM samples WHERE annotation_count >= 25'))[0]!.n);
      expect(expected).toBeGreaterThan(0);
      expect(tagged).toEqual({ changed: expected, revision: 2 });
      expect((await dv.tags.tagAnnotations(dataset, { filter: {}, predictions: ['shifted'] }, ['pred'])).changed).toBe(23);
      const view = await dv.views.create(dataset, { name: 'many', filter: { tags: ['many'] } });
      expect(await dv.samples.count(dataset, await dv.views.filterOf(dataset, view.id, {}))).toBe(expected);
    } finally {
      await env.close();
    }
  });

  it('stores the parser\'s segmentation codes: the ENUM lists the kinds in the parser\'s order', async () => {
    const db = await Database.open(path.join(tempDir(), 'fresh.duckdb'));
    try {
      const [r] = await db.query('SELECT enum_range(NULL::segmentation_kind) AS kinds');
      expect(r!.kinds).toEqual([...SEGMENTATION_KINDS]);
    } finally {
      await db.close();
    }
  });

  it('refuses a database newer than itself, naming both versions', async () => {
    const file = path.join(tempDir(), 'future.duckdb');
    const instance = await DuckDBInstance.create(file);
    const c = await instance.connect();
    await c.run('CREATE TABLE schema_version (version INTEGER NOT NULL)');
    await c.run('INSERT INTO schema_version VALUES (99)');
    c.closeSync();
    instance.closeSync();
    await expect(Database.open(file)).rejects.toThrow(new RegExp(`schema version 99, newer than this DataVisor \\(${SCHEMA_VERSION}\\)`));
  });
});
