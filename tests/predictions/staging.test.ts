import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../dist/services/db/connection.js';
import type { ImportEvent } from '../../dist/services/predictions/predictions.js';
import { ingestAll, openTestEnv, tempDir, type TestEnv } from '../helpers/env.js';

/**
 * An import stages its detections in scratch tables of its own, committed outside the dataset's
 * change (db/predictions.ts): they are dropped whether the import commits or fails, a change of
 * the dataset committed while the import waits for its turn is checked against, and the tables a
 * dead process left are dropped at the next open.
 */

const IMAGES = [5, 7, 9];
const gt = {
  images: IMAGES.map((id) => ({ id, file_name: `${id}.jpg`, width: 100, height: 100 })),
  annotations: IMAGES.map((id, i) => ({ id: i + 1, image_id: id, category_id: 3, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0 })),
  categories: [{ id: 3, name: 'cat' }, { id: 4, name: 'dog' }],
};
// Category 4 only: the ground truth does not use it, so a change may delete it.
const results = [9, 5, 7, 5].map((image_id, i) => ({ image_id, category_id: 4, bbox: [i, i, 5, 5], score: 1 - i / 10 }));

let env: TestEnv;
let datasetId: string;

const scratch = async (kind: string) =>
  Number((await env.dv.db.query(`SELECT count(*) AS n FROM duckdb_tables() WHERE starts_with(table_name, $1)`, [`staging_${kind}`]))[0]!.n);

async function until(test: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs an import up to the point where its detections are checked and staged (committed, outside
 * any change) while `held`, a change of the dataset, holds the dataset's turn; `during` then runs
 * in that change, which commits; the import's events follow.
 */
async function importAround(name: string, during: (tx: Awaited<ReturnType<TestEnv['dv']['datasets']['openChange']>>['tx']) => Promise<void>) {
  const file = path.join(env.dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(results));
  const run = env.dv.predictions.import({ datasetId, resultsPath: file, name });
  const events: ImportEvent[] = [];
  while (!/checking/.test(events.at(-1)?.message ?? '')) events.push((await run.next()).value as ImportEvent);
  const held = await env.dv.datasets.openChange(datasetId);
  const rest = (async () => {
    for (let step = await run.next(); !step.done; step = await run.next()) events.push(step.value);
    return events;
  })();
  // Checked: the rows read are gone, the checked rows wait, committed, for the change.
  await until(async () => (await scratch('fpred')) === 1 && (await scratch('ppred')) === 0);
  await during(held.tx);
  await held.commit();
  return rest;
}

beforeAll(async () => {
  env = await openTestEnv();
  fs.writeFileSync(path.join(env.dir, 'gt.json'), JSON.stringify(gt));
  datasetId = (await ingestAll(env.dv, { annotationPath: path.join(env.dir, 'gt.json'), imageDir: env.dir })).at(-1)!.dataset_id!;
});
afterAll(() => env?.close());

describe('the scratch tables of a prediction import', () => {
  it('wait outside the change, and are dropped once it commits', async () => {
    const events = await importAround('waited', async () => undefined);
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: results.length });
    const [run] = await env.dv.predictions.list(datasetId);
    const stored = await env.dv.db.query(
      `SELECT ord - $3 AS position, image_id, score FROM annotations WHERE dataset_id = $1 AND label_set = $2 ORDER BY ord`,
      [datasetId, run!.labelSet, run!.ordBase],
    );
    expect(stored).toEqual(results.map((r, i) => ({ position: i, image_id: r.image_id, score: r.score })));
    expect(await scratch('')).toBe(0);
  });

  it('are checked again when the dataset changed meanwhile: a category gone refuses the import, leaving nothing', async () => {
    const runs = (await env.dv.predictions.list(datasetId)).length;
    const events = await importAround('late', (tx) => tx.run(`DELETE FROM categories WHERE dataset_id = $1 AND category_id = 4`, [datasetId]));
    expect(events.at(-1)).toMatchObject({ stage: 'error', code: 'CONFLICT' });
    expect(events.at(-1)!.message).toMatch(/changed during the import: 4 prediction\(s\) name an image or category it no longer holds/);
    expect((await env.dv.predictions.list(datasetId)).length).toBe(runs);
    expect(await scratch('')).toBe(0);
  });

  it('are dropped when an import fails its checks, before its error event', async () => {
    const file = path.join(env.dir, 'unknown.json');
    fs.writeFileSync(file, JSON.stringify([{ image_id: 404, category_id: 3, score: 1 }]));
    const run = env.dv.predictions.import({ datasetId, resultsPath: file, name: 'unknown' });
    let last: ImportEvent;
    do last = (await run.next()).value as ImportEvent;
    while (last.stage !== 'error');
    expect(last).toMatchObject({ code: 'INVALID_RESULTS' });
    expect(await scratch('')).toBe(0);
    expect((await run.next()).done).toBe(true);
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
