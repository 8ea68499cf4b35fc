import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';

/** `datavisor predictions import|list|delete`, spawned as a user runs it. */

const BIN = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
let dir: string;
let env: NodeJS.ProcessEnv;

const cli = (args: string[]) =>
  promisify(execFile)(process.execPath, [BIN, ...args], { env, cwd: dir }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

beforeAll(() => {
  dir = tempDir('dv-cli-pred-');
  fs.mkdirSync(path.join(dir, 'plugins'));
  env = {
    ...process.env,
    DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'),
    DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'),
    DATAVISOR_PLUGIN_DIR: path.join(dir, 'plugins'),
    DATAVISOR_DATA_ROOTS: dir,
    DATAVISOR_THUMBNAILS_ON_INGEST: '0',
  };
  const gt = {
    images: [1, 2].map((id) => ({ id, file_name: `${id}.jpg`, width: 50, height: 50 })),
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0 }],
    categories: [{ id: 1, name: 'thing' }],
  };
  fs.writeFileSync(path.join(dir, 'gt.json'), JSON.stringify(gt));
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify([1, 2, 2].map((image_id, i) => ({ image_id, category_id: 1, bbox: [i, i, 4, 4], score: 0.5 + i / 10 }))));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('datavisor predictions', () => {
  it('imports by dataset name, lists, refuses a used name with one line, deletes', async () => {
    expect((await cli(['ingest', '--name', 'tiny', path.join(dir, 'gt.json'), dir])).code).toBe(0);
    const imported = await cli(['predictions', 'import', 'tiny', path.join(dir, 'run.json'), '--name', 'run-1', '--json']);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout.trim().split('\n').at(-1)!)).toMatchObject({ stage: 'complete', prediction_count: 3 });

    const list = await cli(['predictions', 'list', 'tiny', '--json']);
    expect(JSON.parse(list.stdout).predictions).toEqual([expect.objectContaining({ name: 'run-1', prediction_count: 3, source_path: path.join(fs.realpathSync(dir), 'run.json') })]);
    expect((await cli(['predictions', 'list', 'tiny'])).stdout).toMatch(/^NAME\s+PREDICTIONS\s+CREATED\s+SOURCE\nrun-1\s+3\s/);

    const conflict = await cli(['predictions', 'import', 'tiny', path.join(dir, 'run.json'), '--name', 'run-1']);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toMatch(/^datavisor: import failed \(CONFLICT\): .*already has a prediction run named "run-1"[^\n]*\n$/);

    expect((await cli(['predictions', 'delete', 'tiny', 'run-1'])).stdout).toBe('deleted prediction run "run-1"\n');
    expect((await cli(['predictions', 'list', 'tiny'])).stdout).toBe('no prediction runs\n');
  });

  it('names an unknown dataset or run in one line', async () => {
    const unknown = await cli(['predictions', 'list', 'no-such-dataset']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toBe('datavisor: dataset "no-such-dataset" does not exist\n');
    const run = await cli(['predictions', 'delete', 'tiny', 'never']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/^datavisor: prediction run of dataset [a-z2-7]{16} "never" does not exist\n$/);
  });
});
