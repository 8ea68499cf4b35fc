import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../dist/services/db/connection.js';
import type { ImportEvent } from '../../dist/services/predictions/predictions.js';
import { importAll as importEvents, ingestJson, openTestEnv, tempDir, type TestEnv } from '../helpers/env.js';

/**
 * How an import writes its run (db/predictions.ts, RunWriter): in one change of the dataset that
 * holds the dataset's turn from the first detection read, rows straight into `annotations` while
 * their samples come in order, the rest sorted by sample at the end; a failure leaves no row and
 * no table behind.
 */

const IMAGES = [5, 7, 9, 11, 13, 15];
const gt = {
  images: IMAGES.map((id) => ({ id, file_name: `${id}.jpg`, width: 100, height: 100 })),
  annotations: IMAGES.map((id, i) => ({ id: i + 1, image_id: id, category_id: 3, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0 })),
  categories: [{ id: 3, name: 'cat' }, { id: 4, name: 'dog' }],
};
const detections = (imageIds: number[]) => imageIds.map((image_id, i) => ({ image_id, category_id: 4, bbox: [i, i, 5, 5], score: 1 - i / 100 }));

let env: TestEnv;
let datasetId: string;
let n = 0;

function write(content: unknown): string {
  const file = path.join(env.dir, `results-${n++}.json`);
  fs.writeFileSync(file, JSON.stringify(content));
  return file;
}

const importAll = (resultsPath: string, name: string) => importEvents(env.dv, { datasetId, resultsPath, name });

/** The run's rows in the table's own order (rowid), with their position in the file. */
async function stored(name: string) {
  const run = await env.dv.predictions.get(datasetId, name);
  return env.dv.db.query(
    `SELECT ord - $3 AS position, sample_ord, image_id, score FROM annotations WHERE dataset_id = $1 AND label_set = $2 ORDER BY rowid`,
    [datasetId, run.labelSet, run.ordBase],
  );
}

const sampleOrd = new Map(IMAGES.map((id, i) => [id, i]));
const descents = (xs: number[]) => xs.filter((x, i) => i > 0 && x < xs[i - 1]!).length;
const tables = async () => (await env.dv.db.query(`SELECT table_name FROM duckdb_tables() WHERE temporary OR starts_with(table_name, 'staging_')`)).map((r) => r.table_name);

beforeAll(async () => {
  env = await openTestEnv();
  datasetId = await ingestJson(env, 'gt.json', gt);
});
afterAll(() => env?.close());

describe('a prediction run', () => {
  it('of a file in the dataset\'s image order is stored in that order', async () => {
    const file = detections([5, 5, 7, 9, 9, 9, 13, 15]);
    expect((await importAll(write(file), 'in-order')).at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    const rows = await stored('in-order');
    expect(rows.map((r) => Number(r.position))).toEqual(file.map((_, i) => i));
    expect(rows.map((r) => r.sample_ord)).toEqual(file.map((d) => sampleOrd.get(d.image_id)));
  });

  it('of a file in another order keeps every position, stored as at most two runs sorted by sample', async () => {
    const order = [9, 5, 15, 7, 5, 13, 11, 9, 5];
    const file = detections(order);
    expect((await importAll(write(file), 'shuffled')).at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    const rows = await stored('shuffled');
    const byPosition = [...rows].sort((a, b) => Number(a.position) - Number(b.position));
    expect(byPosition.map((r) => ({ image: Number(r.image_id), score: r.score }))).toEqual(file.map((d) => ({ image: d.image_id, score: d.score })));
    // The first detection went straight in; the second is out of order after it, so it and every
    // later one were sorted by sample (then position) at the end.
    const rest = order.map((id, position) => ({ sample: sampleOrd.get(id)!, position })).slice(1);
    rest.sort((a, b) => a.sample - b.sample || a.position - b.position);
    expect(rows.map((r) => Number(r.position))).toEqual([0, ...rest.map((r) => r.position)]);
    expect(descents(rows.map((r) => r.sample_ord as number))).toBe(1);
    expect(await tables()).toEqual([]);
  });

  it('is written in a change that holds the dataset\'s turn: a change asked for meanwhile waits for the import', async () => {
    const run = env.dv.predictions.import({ datasetId, resultsPath: write(detections([5, 7])), name: 'turn' });
    const first = (await run.next()).value as ImportEvent;
    expect(first).toMatchObject({ stage: 'parsing_predictions', message: 'Reading predictions' });
    const order: string[] = [];
    const other = env.dv.datasets.change(datasetId, (tx) => tx.run(`DELETE FROM categories WHERE dataset_id = $1 AND category_id = 99`, [datasetId])).then(() => order.push('change'));
    await new Promise((r) => setTimeout(r, 200));
    for (let step = await run.next(); !step.done; step = await run.next()) if (step.value.stage === 'complete') order.push('import');
    await other;
    expect(order).toEqual(['import', 'change']);
  });

  it('gives the turn back when its consumer leaves early or it is cancelled, leaving nothing', async () => {
    const file = write(detections(Array.from({ length: 20_000 }, (_, i) => IMAGES[Math.floor((i * IMAGES.length) / 20_000)]!)));
    const left = env.dv.predictions.import({ datasetId, resultsPath: file, name: 'left' });
    expect((await left.next()).value).toMatchObject({ message: 'Reading predictions' });
    await left.return(undefined);
    const controller = new AbortController();
    const events: ImportEvent[] = [];
    for await (const e of env.dv.predictions.import({ datasetId, resultsPath: file, name: 'cancelled' }, { signal: controller.signal })) {
      events.push(e);
      if (e.message === 'Reading predictions') controller.abort();
    }
    expect(events.at(-1)).toMatchObject({ stage: 'error', code: 'INGEST_CANCELLED' });
    // A change of the dataset goes through at once: neither import holds its turn.
    const { revision } = await env.dv.datasets.change(datasetId, async () => undefined);
    expect(revision).toBeGreaterThan(0);
    const names = (await env.dv.predictions.list(datasetId)).map((r) => r.name);
    expect(names).not.toContain('left');
    expect(names).not.toContain('cancelled');
    expect(await tables()).toEqual([]);
  });

  it('leaves no row and no table when it fails, out of order or not', async () => {
    const before = await env.dv.db.query(`SELECT count(*) AS n FROM annotations WHERE dataset_id = $1`, [datasetId]);
    for (const order of [[5, 7, 404], [9, 5, 7, 404]]) {
      const events = await importAll(write(detections(order)), `bad-${order.length}`);
      expect(events.at(-1)).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
      expect(events.at(-1)!.message).toContain(`image_id 404 at [${order.length - 1}]`);
    }
    expect(await env.dv.db.query(`SELECT count(*) AS n FROM annotations WHERE dataset_id = $1`, [datasetId])).toEqual(before);
    expect(await tables()).toEqual([]);
  });
});

describe('scratch tables a dead process left', () => {
  it('are dropped when the database opens; other tables stay', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'db.duckdb');
    try {
      const first = await Database.open(file);
      await first.transaction(async (tx) => {
        await tx.run(`CREATE TABLE staging_fpred_aaaaaaaaaaaaaaaa_0123456789ab (ord INTEGER)`);
        await tx.run(`INSERT INTO staging_fpred_aaaaaaaaaaaaaaaa_0123456789ab VALUES (1), (2)`);
        await tx.run(`CREATE TABLE kept (x INTEGER)`);
      });
      await first.close();
      const again = await Database.open(file);
      const names = (await again.query(`SELECT table_name FROM duckdb_tables() WHERE table_name IN ('kept', 'staging_fpred_aaaaaaaaaaaaaaaa_0123456789ab')`)).map((r) => r.table_name);
      await again.close();
      expect(names).toEqual(['kept']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
