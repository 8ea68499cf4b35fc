import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor } from '../../dist/services/app.js';
import { createLogger } from '../../dist/services/logger.js';
import { dataRoots, DEMO, ingestAll, openTestEnv, RBC, readJson, tempDir, traces } from '../helpers/env.js';
import { writeSyntheticCoco } from '../helpers/fixtures.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
let work: string;
let big: string;
const demo = readJson<{ annotations: unknown[] }>(DEMO.annotations);

beforeAll(() => {
  work = tempDir('dv-durability-');
  big = path.join(work, 'big.json');
  // ~11 MB, 3,000 images: long enough to be caught mid-way.
  writeSyntheticCoco(big, { images: 3000 });
  fs.mkdirSync(path.join(work, 'images'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Runs the CLI ingest and SIGKILLs it when the first event of `stage` arrives. */
async function killDuring(dbPath: string, stage: string, annotations: string, images: string, extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, 'ingest', '--json', annotations, images], {
    env: {
      ...process.env, DATAVISOR_DB_PATH: dbPath, DATAVISOR_CACHE_DIR: path.join(path.dirname(dbPath), 'thumbs'),
      DATAVISOR_DATA_ROOTS: dataRoots(work), DATAVISOR_PLUGIN_DIR: path.join(work, 'no-plugins'), DATAVISOR_THUMBNAILS_ON_INGEST: '0', ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seen: string[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  for await (const line of readline.createInterface({ input: child.stdout })) {
    const e = JSON.parse(line) as { stage: string };
    seen.push(e.stage);
    if (e.stage === stage) {
      child.kill('SIGKILL');
      break;
    }
  }
  expect(await exited).toBe('SIGKILL');
  return seen;
}

async function reopen(dbPath: string) {
  const settings = loadSettings({ DATAVISOR_DB_PATH: dbPath, DATAVISOR_CACHE_DIR: path.join(path.dirname(dbPath), 'thumbs'),
    DATAVISOR_DATA_ROOTS: dataRoots(work), DATAVISOR_PLUGIN_DIR: path.join(work, 'no-plugins') }, work);
  return openDataVisor(settings, createLogger('silent'));
}

describe('crash safety', () => {
  it('a process killed while parsing leaves no trace of the dataset, and the database still works', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'db.duckdb');
    const seen = await killDuring(dbPath, 'parsing_annotations', big, path.join(work, 'images'));
    expect(seen).toContain('parsing_images');
    expect(seen).not.toContain('complete');

    const dv = await reopen(dbPath);
    try {
      expect(await traces(dv)).toEqual({ datasets: 0, samples: 0, annotations: 0, categories: 0, licenses: 0, staging: 0 });
      const events = await ingestAll(dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images });
      expect(events.at(-1)).toMatchObject({ stage: 'complete', image_count: 128, annotation_count: demo.annotations.length });
    } finally {
      await dv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a process killed after the final tables were written, before commit, leaves no trace either', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'db.duckdb');
    // The thumbnails stage runs after every row is in the final tables, inside the open transaction.
    const seen = await killDuring(dbPath, 'thumbnails', DEMO.annotations, DEMO.images, { DATAVISOR_THUMBNAILS_ON_INGEST: '128' });
    expect(seen).toContain('parsing_annotations');

    const dv = await reopen(dbPath);
    try {
      expect(await traces(dv)).toEqual({ datasets: 0, samples: 0, annotations: 0, categories: 0, licenses: 0, staging: 0 });
    } finally {
      await dv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('concurrency', () => {
  it('runs two ingests at once, and readers never see a half dataset', async () => {
    const env = await openTestEnv({ DATAVISOR_DATA_ROOTS: dataRoots(work) });
    try {
      const first = await ingestAll(env.dv, { annotationPath: RBC('valid').annotations, imageDir: RBC('valid').images });
      expect(first.at(-1)!.stage).toBe('complete');
      const before = await traces(env.dv);

      const snapshots: Record<string, number>[] = [];
      const listed: number[] = [];
      const watch = async (request: { annotationPath: string; imageDir: string }) => {
        const events = [];
        for await (const e of env.dv.ingestion.ingest(request)) {
          events.push(e);
          if (e.stage !== 'complete' && e.stage !== 'error') {
            snapshots.push(await traces(env.dv));
            listed.push((await env.dv.datasets.list()).length);
          }
        }
        return events;
      };
      const [a, b] = await Promise.all([
        watch({ annotationPath: big, imageDir: path.join(work, 'images') }),
        watch({ annotationPath: DEMO.annotations, imageDir: DEMO.images }),
      ]);
      expect(a.at(-1), JSON.stringify(a.at(-1))).toMatchObject({ stage: "complete", image_count: 3000 });
      expect(b.at(-1)).toMatchObject({ stage: 'complete', image_count: 128, annotation_count: demo.annotations.length });

      // While they ran, every read saw either nothing of a new dataset or all of it.
      const bigCounts = { samples: 3000, annotations: a.at(-1)!.annotation_count! };
      const smallCounts = { samples: 128, annotations: demo.annotations.length };
      for (const s of snapshots) {
        const extraSamples = s.samples - before.samples;
        const extraAnnotations = s.annotations - before.annotations;
        const possible = [
          [0, 0],
          [smallCounts.samples, smallCounts.annotations],
          [bigCounts.samples, bigCounts.annotations],
          [smallCounts.samples + bigCounts.samples, smallCounts.annotations + bigCounts.annotations],
        ];
        expect(possible).toContainEqual([extraSamples, extraAnnotations]);
        expect(s.staging).toBe(0);
      }
      expect(snapshots.length).toBeGreaterThan(2);
      expect(Math.min(...listed)).toBe(1);

      const all = await env.dv.datasets.list();
      expect(all.map((d) => d.imageCount).sort((x, y) => x - y)).toEqual([20, 128, 3000]);
    } finally {
      await env.close();
    }
  });
});
