import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataRoots, DEMO, readJson, tempDir } from '../helpers/env.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
let dir: string;
let env: NodeJS.ProcessEnv;
/** The demo dataset's counts, from its file. */
const demo = readJson<{ images: unknown[]; annotations: unknown[]; categories: unknown[] }>(DEMO.annotations);
const counts = { image_count: demo.images.length, annotation_count: demo.annotations.length, category_count: demo.categories.length };

beforeAll(() => {
  dir = tempDir('dv-cli-');
  fs.mkdirSync(path.join(dir, 'plugins'));
  env = {
    ...process.env,
    DATAVISOR_DB_PATH: path.join(dir, 'db', 'datavisor.duckdb'),
    DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'),
    DATAVISOR_PLUGIN_DIR: path.join(dir, 'plugins'),
    DATAVISOR_DATA_ROOTS: dataRoots(dir),
    DATAVISOR_THUMBNAILS_ON_INGEST: '4',
  };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]) =>
  run(process.execPath, [BIN, ...args], { env, cwd: dir }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('datavisor CLI', () => {
  it('ingest --json prints one event per line and exits 0; datasets lists it', async () => {
    const r = await cli(['ingest', '--json', '--name', 'demo', '--split', 'train', DEMO.annotations, DEMO.images]);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => e.stage)).toEqual(expect.arrayContaining(['categories', 'parsing_images', 'parsing_annotations', 'thumbnails']));
    const done = events.at(-1);
    expect(done).toMatchObject({ stage: 'complete', ...counts });
    expect(r.stderr).toBe('');
    // Each stage's last event carries what the file holds (it once said "Read 0 categories").
    const lastOf = (stage: string) => events.filter((e) => e.stage === stage).at(-1)?.current;
    expect([lastOf('categories'), lastOf('parsing_images'), lastOf('parsing_annotations')]).toEqual([counts.category_count, counts.image_count, counts.annotation_count]);

    const list = await cli(['datasets', '--json']);
    expect(list.code).toBe(0);
    const body = JSON.parse(list.stdout);
    expect(body.datasets).toHaveLength(1);
    expect(body.datasets[0]).toMatchObject({
      id: done.dataset_id, name: 'demo', format: 'coco', split: 'train', ...counts,
      source_path: DEMO.annotations, image_dir: DEMO.images,
    });
    expect(new Date(body.datasets[0].created_at).getTime()).toBeGreaterThan(0);

    const table = await cli(['datasets']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+IMAGES\s+ANNOTATIONS\s+CATEGORIES\s+CREATED$/);
    expect(table.stdout).toContain(`${done.dataset_id}  demo`);
  });

  it('without a terminal, prints one line per stage with the stage\'s true count', async () => {
    const r = await cli(['ingest', '--name', 'plain', DEMO.annotations, DEMO.images]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.find((l) => l.startsWith('parsing_images:'))).toMatch(new RegExp(`\\b${counts.image_count} images\\b`));
    expect(lines.find((l) => l.startsWith('parsing_annotations:'))).toMatch(new RegExp(`\\b${counts.annotation_count} annotations\\b`));
    expect(lines.find((l) => l.startsWith('categories:'))).toMatch(new RegExp(`\\b${counts.category_count} categories\\b`));
    expect(lines.some((l) => /\bRead 0 /.test(l))).toBe(false);
  });

  it('a failed ingest exits non-zero with one line naming the reason, and stores nothing', async () => {
    const bad = path.join(dir, 'truncated.json');
    fs.writeFileSync(bad, fs.readFileSync(DEMO.annotations).subarray(0, 100_000));
    const before = JSON.parse((await cli(['datasets', '--json'])).stdout).datasets.length;
    const r = await cli(['ingest', bad, DEMO.images]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^datavisor: ingest failed \(INVALID_JSON\): Truncated JSON: the file ends at byte 100000/);
    expect(JSON.parse((await cli(['datasets', '--json'])).stdout).datasets).toHaveLength(before);

    const outside = await cli(['ingest', '/etc/hostname', DEMO.images]);
    expect(outside.code).toBe(1);
    expect(outside.stderr.trim()).toMatch(/^datavisor: ingest failed \(FORBIDDEN\): annotation_path .* outside the allowed data roots/);
  });

  it('rejects bad arguments with a usage error', async () => {
    // image_dir is optional for VOC folders; a COCO file without one fails with the reader's reason.
    const r = await cli(['ingest', DEMO.annotations]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ingest failed \(BAD_USER_INPUT\): image_dir is required for a COCO file/);
    const f = await cli(['ingest', '--format', 'kitti', DEMO.annotations, DEMO.images]);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toContain('Allowed choices are auto, coco, voc, yolo');
  });

  it('shows a live progress bar on a terminal', () => {
    // `script` gives the CLI a pseudo-terminal, as a user's shell would.
    const cmd = [BIN, 'ingest', DEMO.annotations, DEMO.images].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', `${process.execPath} ${cmd}`, '/dev/null'], { env, cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(0);
    // Frames are throttled, so only the last one is certain: the thumbnails stage, complete.
    expect(r.stdout).toMatch(/\|[█░]{10,}\| \d+%/);
    expect(r.stdout).toMatch(/thumbnails\s*\|█+\| 100%/);
    expect(r.stdout).toContain(`Ingested ${counts.image_count} images, ${counts.annotation_count} annotations and ${counts.category_count} categories`);
  });
});
