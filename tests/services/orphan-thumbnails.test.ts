import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataVisor } from '../../dist/services/app.js';
import { createLogger } from '../../dist/services/logger.js';
import { DEMO, ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Thumbnails can outlive their dataset: a process killed while an ingest made them leaves them on
 * disk, and the rolled-back dataset never existed (tests/cli/serve.test.ts kills a real server).
 * None is served, and the folders are swept when DataVisor opens.
 */

const firstImage = (JSON.parse(fs.readFileSync(DEMO.annotations, 'utf8')) as { images: { id: number; file_name: string }[] }).images[0]!;
/** An id as ingestion makes them, of no dataset. */
const GONE = 'abcdefghijklmnop';

let env: TestEnv;

beforeAll(async () => {
  env = await openTestEnv({ DATAVISOR_THUMBNAILS_ON_INGEST: '2' });
});

afterAll(async () => {
  await env?.close();
});

const warmFor = (datasetId: string) =>
  env.dv.thumbnails.warm({
    datasetId, sampleKey: String(firstImage.id), size: 'medium',
    loadSource: async () => path.join(DEMO.images, firstImage.file_name),
  });

describe('thumbnails of a dataset that does not exist', () => {
  it('are not served, from disk or memory', async () => {
    expect(await warmFor(GONE)).toBe(true);
    await expect(env.dv.samples.thumbnail(GONE, firstImage.id, 'medium')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(env.dv.samples.thumbnail(GONE, firstImage.id, 'medium')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('are swept when DataVisor opens; a dataset\'s own and folders that are not ours stay', async () => {
    const done = (await ingestAll(env.dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images })).at(-1)!;
    expect(done.stage, done.message).toBe('complete');
    const id = done.dataset_id!;
    expect((await env.dv.samples.thumbnail(id, firstImage.id, 'medium')).contentType).toBe('image/webp');
    await warmFor(GONE);
    const cache = env.dv.settings.cacheDir;
    fs.mkdirSync(path.join(cache, 'notes'));
    fs.mkdirSync(path.join(cache, 'qrstuvwxyzabcdef'));
    fs.writeFileSync(path.join(cache, 'qrstuvwxyzabcdef', 'mine.txt'), 'not a thumbnail');
    fs.writeFileSync(path.join(cache, 'ghijklmnopqrstuv'), 'a file named like a dataset');
    await env.dv.close();

    const dv = await openDataVisor(env.dv.settings, createLogger('silent'));
    try {
      expect(fs.readdirSync(cache).filter((n) => !n.startsWith('.trash-')).sort()).toEqual([id, 'ghijklmnopqrstuv', 'notes', 'qrstuvwxyzabcdef'].sort());
      expect((await dv.samples.thumbnail(id, firstImage.id, 'medium')).contentType).toBe('image/webp');
      await expect(dv.samples.thumbnail(GONE, firstImage.id, 'medium')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await dv.close();
    }
  });
});
