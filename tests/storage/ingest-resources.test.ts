import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../dist/config.js';
import { ANALYSIS_LINGER_MS } from '../../dist/services/db/ingest-resources.js';
import type { IngestEvent } from '../../dist/services/ingest/ingest.js';
import { DEMO, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * DuckDB's memory_limit, allocator flush thresholds and threads follow the ingests
 * (src/services/db/ingest-resources.ts): the ingest limit while ingests only append their rows, the
 * full limit whenever one writes its final tables, and when none runs; freed pages handed back
 * after each task while any ingest runs; DuckDB's own thread count while any ingest or aggregation
 * runs, one thread when none does. An ingest's event iterator pauses the ingest at each event, so
 * each phase can be held and looked at.
 */

const FULL = '122.0 MiB'; // 128MB as DuckDB prints it
const LOW = '61.0 MiB'; // 64MB

let t: TestEnv;
beforeAll(async () => {
  t = await openTestEnv({ DATAVISOR_THUMBNAILS_ON_INGEST: '2' });
});
afterAll(async () => {
  await t?.close();
});

// duckdb_settings() is read when the query runs (current_setting() would be folded into the prepared statement).
const setting = async (name: string) => (await t.dv.db.query(`SELECT value AS v FROM duckdb_settings() WHERE name = $1`, [name]))[0]!.v;
const limit = () => setting('memory_limit');
const threads = async () => Number(await setting('threads'));

/** Pulls events until one matches; returns it. */
async function until(it: AsyncIterator<IngestEvent>, match: (e: IngestEvent) => boolean): Promise<IngestEvent> {
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error('the ingest ended first');
    if (match(r.value)) return r.value;
  }
}

describe('DuckDB memory limit during ingests', () => {
  it('is the ingest limit while ingests append, the full one while any writes its final tables or none runs', async () => {
    expect(await limit()).toBe(FULL);
    const a = t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })[Symbol.asyncIterator]();
    await until(a, (e) => e.stage === 'parsing_annotations');
    expect(await limit()).toBe(LOW);

    const b = t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })[Symbol.asyncIterator]();
    await until(b, (e) => e.stage === 'parsing_images');
    expect(await limit()).toBe(LOW);

    // A has written its final tables and makes thumbnails before it commits: still finishing.
    await until(a, (e) => e.stage === 'thumbnails');
    expect(await limit()).toBe(FULL);
    await until(a, (e) => e.stage === 'complete');
    // B still appends.
    expect(await limit()).toBe(LOW);

    await until(b, (e) => e.stage === 'complete');
    expect(await limit()).toBe(FULL);
  });

  it('goes back to the full limit when an ingest fails or its consumer stops early', async () => {
    const bad = path.join(t.dir, 'truncated.json');
    fs.writeFileSync(bad, fs.readFileSync(DEMO.annotations, 'utf8').slice(0, 40_000));
    const failing = t.dv.ingestion.ingest({ annotationPath: bad, imageDir: DEMO.images })[Symbol.asyncIterator]();
    expect((await until(failing, (e) => e.stage === 'error')).code).toBe('INVALID_JSON');
    expect(await limit()).toBe(FULL);

    const dropped = t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })[Symbol.asyncIterator]();
    await until(dropped, (e) => e.stage === 'parsing_annotations');
    expect(await limit()).toBe(LOW);
    await dropped.return!(undefined);
    expect(await limit()).toBe(FULL);
  });
});

describe('DuckDB allocator flush thresholds during ingests', () => {
  const flush = async () => [await setting('allocator_flush_threshold'), await setting('allocator_bulk_deallocation_flush_threshold')];

  it('are 0 while any ingest runs (its freed pages go back after each task) and DuckDB’s own when none does, also after a failure', async () => {
    // What DuckDB has by itself, read from an instance of its own.
    const own = await DuckDBInstance.create(':memory:');
    const conn = await own.connect();
    const ownSetting = async (name: string) => (await conn.runAndReadAll(`SELECT value FROM duckdb_settings() WHERE name = $1`, [name])).getRows()[0]![0];
    const idle = [await ownSetting('allocator_flush_threshold'), await ownSetting('allocator_bulk_deallocation_flush_threshold')];
    conn.closeSync();
    own.closeSync();
    const atOnce = ['0 bytes', '0 bytes'];
    expect(idle).not.toEqual(atOnce);

    expect(await flush()).toEqual(idle);
    const a = t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })[Symbol.asyncIterator]();
    await until(a, (e) => e.stage === 'parsing_annotations');
    expect(await flush()).toEqual(atOnce);
    await until(a, (e) => e.stage === 'thumbnails');
    expect(await flush()).toEqual(atOnce);
    await until(a, (e) => e.stage === 'complete');
    expect(await flush()).toEqual(idle);
    // An aggregation keeps the freed pages it reuses (analyse() switches the threads, not these);
    // its threads go once it has lingered.
    expect(await t.dv.db.ingestResources.analyse(flush)).toEqual(idle);
    await new Promise((resolve) => setTimeout(resolve, ANALYSIS_LINGER_MS + 50));
    await t.dv.db.ingestResources.idle();

    const bad = path.join(t.dir, 'truncated-flush.json');
    fs.writeFileSync(bad, fs.readFileSync(DEMO.annotations, 'utf8').slice(0, 40_000));
    const failing = t.dv.ingestion.ingest({ annotationPath: bad, imageDir: DEMO.images })[Symbol.asyncIterator]();
    expect((await until(failing, (e) => e.stage === 'error')).code).toBe('INVALID_JSON');
    expect(await flush()).toEqual(idle);
  });
});

describe('DuckDB threads during ingests', () => {
  // On one core DuckDB's default is one thread too, and the switch cannot be seen.
  it.skipIf(availableParallelism() < 2)('are DuckDB’s default count while any ingest runs and one while none does, also after a failure', async () => {
    // What DuckDB picks by itself (the cores), read from an instance of its own.
    const own = await DuckDBInstance.create(':memory:');
    const conn = await own.connect();
    const cores = Number((await conn.runAndReadAll(`SELECT value FROM duckdb_settings() WHERE name = 'threads'`)).getRows()[0]![0]);
    conn.closeSync();
    own.closeSync();

    expect(cores).toBeGreaterThan(1);
    expect(await threads()).toBe(1);
    const a = t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })[Symbol.asyncIterator]();
    await until(a, (e) => e.stage === 'parsing_annotations');
    expect(await threads()).toBe(cores);
    const b = t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })[Symbol.asyncIterator]();
    await until(b, (e) => e.stage === 'parsing_images');
    await until(a, (e) => e.stage === 'thumbnails');
    expect(await threads()).toBe(cores);
    await until(a, (e) => e.stage === 'complete');
    // B still runs.
    expect(await threads()).toBe(cores);
    await until(b, (e) => e.stage === 'complete');
    expect(await threads()).toBe(1);

    const bad = path.join(t.dir, 'truncated-threads.json');
    fs.writeFileSync(bad, fs.readFileSync(DEMO.annotations, 'utf8').slice(0, 40_000));
    const failing = t.dv.ingestion.ingest({ annotationPath: bad, imageDir: DEMO.images })[Symbol.asyncIterator]();
    expect((await until(failing, (e) => e.stage === 'error')).code).toBe('INVALID_JSON');
    expect(await threads()).toBe(1);
  });
});

describe('DuckDB threads during aggregations', () => {
  it.skipIf(availableParallelism() < 2)('are DuckDB’s default count while an aggregation runs, and one again once it ends, also after a failure', async () => {
    const resources = t.dv.db.ingestResources;
    // The threads stay up ANALYSIS_LINGER_MS after the last read (a dashboard's parts come together), then go.
    const after = async () => {
      await new Promise((resolve) => setTimeout(resolve, ANALYSIS_LINGER_MS + 50));
      await resources.idle();
      return threads();
    };
    const cores = await resources.analyse(() => threads());
    expect(cores).toBeGreaterThan(1);
    expect(await after()).toBe(1);
    await expect(resources.analyse(() => t.dv.db.query('SELECT * FROM no_such_table'))).rejects.toThrow(/no_such_table/);
    expect(await after()).toBe(1);
    // Through the service: a histogram of a dataset's boxes (a statement, not a stored count).
    const events = [];
    for await (const e of t.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })) events.push(e);
    const target = await t.dv.aggregations.target(events.at(-1)!.dataset_id!, {});
    const histogram = await t.dv.aggregations.histogram(target, { field: 'bbox_area', bins: 4 });
    expect(histogram.counts.reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
    expect(await after()).toBe(1);
  });
});

describe('DATAVISOR_AGGREGATE_THREADS', () => {
  it('defaults to DuckDB’s count (null), takes a count of at least 1, and refuses anything else naming the variable', () => {
    expect(loadSettings({}, '/tmp').aggregateThreads).toBeNull();
    expect(loadSettings({ DATAVISOR_AGGREGATE_THREADS: '1' }, '/tmp').aggregateThreads).toBe(1);
    for (const v of ['0', '-2', '1.5', 'two']) expect(() => loadSettings({ DATAVISOR_AGGREGATE_THREADS: v }, '/tmp'), v).toThrow(/DATAVISOR_AGGREGATE_THREADS must be an integer >= 1/);
  });

  it('1 keeps aggregations on one thread', async () => {
    const one = await openTestEnv({ DATAVISOR_AGGREGATE_THREADS: '1' });
    try {
      const count = async () => Number((await one.dv.db.query(`SELECT value AS v FROM duckdb_settings() WHERE name = 'threads'`))[0]!.v);
      expect(await one.dv.db.ingestResources.analyse(count)).toBe(1);
    } finally {
      await one.close();
    }
  });
});

describe('memory limit settings', () => {
  const load = (env: Record<string, string>) => loadSettings(env, '/tmp');

  it('defaults to 128MB, and 64MB while ingests append', () => {
    expect(load({})).toMatchObject({ dbMemoryLimit: '128MB', dbIngestMemoryLimit: '64MB' });
  });

  it('drops the ingest limit when it is not below the full one', () => {
    expect(load({ DATAVISOR_DB_MEMORY_LIMIT: '48MB' }).dbIngestMemoryLimit).toBeNull();
    expect(load({ DATAVISOR_DB_MEMORY_LIMIT: '1GiB', DATAVISOR_DB_INGEST_MEMORY_LIMIT: '1.5 GB' }).dbIngestMemoryLimit).toBeNull();
    expect(load({ DATAVISOR_DB_MEMORY_LIMIT: '2GB', DATAVISOR_DB_INGEST_MEMORY_LIMIT: '256MiB' }).dbIngestMemoryLimit).toBe('256MiB');
  });

  it('reads every size DuckDB reads; no limit keeps the ingest limit, a none ingest limit turns it off', () => {
    for (const v of ['4G', '512M', '1 gigabyte', '2048 MB', '1.5GiB']) expect(load({ DATAVISOR_DB_MEMORY_LIMIT: v }).dbIngestMemoryLimit, v).toBe('64MB');
    expect(load({ DATAVISOR_DB_MEMORY_LIMIT: 'none' }).dbIngestMemoryLimit).toBe('64MB');
    expect(load({ DATAVISOR_DB_MEMORY_LIMIT: '-1' }).dbIngestMemoryLimit).toBe('64MB');
    expect(load({ DATAVISOR_DB_INGEST_MEMORY_LIMIT: 'none' }).dbIngestMemoryLimit).toBeNull();
  });

  it('refuses a size DuckDB would not read, naming the variable', () => {
    for (const v of ['50%', '1000', '0', '12 parsecs']) {
      expect(() => load({ DATAVISOR_DB_MEMORY_LIMIT: v }), v).toThrow(`DATAVISOR_DB_MEMORY_LIMIT must be a size such as 128MB, 4G or 1GiB (or none), got ${JSON.stringify(v)}`);
    }
    expect(() => load({ DATAVISOR_DB_INGEST_MEMORY_LIMIT: "64MB'; DROP TABLE x" })).toThrow(/DATAVISOR_DB_INGEST_MEMORY_LIMIT/);
  });
});
