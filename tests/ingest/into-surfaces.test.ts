import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createClient, type ExecutionResult } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../graphql/harness.js';
import { tempDir } from '../helpers/env.js';
import { FIXTURES, RBC, readJson } from '../helpers/fixtures.js';
import { parseSse } from '../rest/helpers.js';

/** `into` over REST (SSE), GraphQL (a graphql-sse subscription) and the CLI, on the committed RBC export. */

const COUNT = (split: 'valid' | 'test') => readJson<{ images: unknown[]; annotations: unknown[] }>(RBC(split).annotations);
const VALID = COUNT('valid');
const TEST = COUNT('test');

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const postIngest = (body: unknown) =>
  fetch(`${h.base}/datasets/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const body = (split: 'valid' | 'test', extra: Record<string, unknown> = {}) => ({ annotation_path: RBC(split).annotations, image_dir: RBC(split).images, split, ...extra });

describe('REST', () => {
  let id: string;
  it('POST /datasets/ingest with into adds a split; samples filter and count by split', async () => {
    const made = parseSse(await (await postIngest(body('valid', { dataset_name: 'rbc-rest' }))).text()).at(-1)!;
    id = made.dataset_id as string;
    // A thumbnail of the first split, cached before its file name changes.
    const [first] = ((await (await fetch(`${h.base}/samples?dataset_id=${id}&limit=1`)).json()) as { items: { id: number; thumbnail_url: string }[] }).items;
    const before = await fetch(first!.thumbnail_url);
    expect(before.status).toBe(200);
    const thumb = Buffer.from(await before.arrayBuffer());

    const added = parseSse(await (await postIngest(body('test', { into: 'rbc-rest' }))).text());
    expect(added.at(-1)).toMatchObject({ stage: 'complete', dataset_id: id, image_count: TEST.images.length, annotation_count: TEST.annotations.length });
    const d = (await (await fetch(`${h.base}/datasets/${id}`)).json()) as Record<string, unknown>;
    expect([d.image_count, d.annotation_count, d.split]).toEqual([VALID.images.length + TEST.images.length, VALID.annotations.length + TEST.annotations.length, null]);
    for (const [split, f] of [['valid', VALID], ['test', TEST]] as const) {
      const page = (await (await fetch(`${h.base}/samples?dataset_id=${id}&split=${split}&limit=200`)).json()) as { total: number; items: { id: number; file_name: string; split: string; thumbnail_url: string }[] };
      expect(page.total).toBe(f.images.length);
      expect(page.items.every((s) => s.split === split && s.file_name.startsWith(`${split}/`))).toBe(true);
      // Each split's images, thumbnails and originals, are served from the one image folder.
      const thumbnail = await fetch(page.items.at(-1)!.thumbnail_url);
      expect([thumbnail.status, thumbnail.headers.get('content-type')]).toEqual([200, 'image/webp']);
    }
    const again = await fetch(first!.thumbnail_url);
    expect(Buffer.from(await again.arrayBuffer()).equals(thumb)).toBe(true);
  });

  it('answers 400 for an empty into, a CONFLICT event for a split the dataset has, NOT_FOUND for an unknown dataset', async () => {
    const bad = await postIngest(body('test', { into: '' }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/into/);
    expect(parseSse(await (await postIngest(body('test', { into: id }))).text()).at(-1)).toMatchObject({ stage: 'error', code: 'CONFLICT' });
    expect(parseSse(await (await postIngest(body('test', { split: 'other', into: 'nothing-named-so' }))).text()).at(-1)).toMatchObject({ stage: 'error', code: 'NOT_FOUND' });
  });
});

describe('GraphQL', () => {
  const SUB = `subscription($input: IngestInput!) { ingestDataset(input: $input) { stage imageCount datasetId } }`;
  type Progress = { stage: string; imageCount: number | null; datasetId: string | null };
  async function subscribe(input: Record<string, unknown>) {
    const client = createClient({ url: `${h.base}/graphql/stream`, fetchFn: fetch, retryAttempts: 0 });
    const out: ExecutionResult<{ ingestDataset: Progress }>[] = [];
    try {
      for await (const r of client.iterate<{ ingestDataset: Progress }>({ query: SUB, variables: { input } })) out.push(r);
    } finally {
      client.dispose();
    }
    return out;
  }

  it('ingestDataset with into adds the split; samples filter by it', async () => {
    const id = await h.ingest(RBC('valid').annotations, RBC('valid').images, { datasetName: 'rbc-gql', split: 'valid' });
    const events = await subscribe({ annotationPath: RBC('test').annotations, imageDir: RBC('test').images, split: 'test', into: id });
    expect(events.at(-1)!.data!.ingestDataset).toEqual({ stage: 'COMPLETE', imageCount: TEST.images.length, datasetId: id });
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { imageCount } test: samples(datasetId: $id, filter: {split: "test"}) { totalCount } valid: samples(datasetId: $id, filter: {split: "valid"}) { totalCount } }`, { id });
    expect(r.data).toEqual({ dataset: { imageCount: VALID.images.length + TEST.images.length }, test: { totalCount: TEST.images.length }, valid: { totalCount: VALID.images.length } });
    const conflict = await subscribe({ annotationPath: RBC('test').annotations, imageDir: RBC('test').images, split: 'test', into: id });
    expect(conflict.at(-1)!.errors![0]!.extensions!.code).toBe('CONFLICT');
  });
});

describe('CLI', () => {
  const BIN = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, [BIN, ...args], { env, cwd: dir }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  beforeAll(() => {
    dir = tempDir('dv-cli-into-');
    fs.mkdirSync(path.join(dir, 'plugins'));
    env = {
      ...process.env, DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'), DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'),
      DATAVISOR_PLUGIN_DIR: path.join(dir, 'plugins'), DATAVISOR_DATA_ROOTS: FIXTURES, DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ingest --into NAME adds a split; an unknown dataset is one line and a non-zero exit', async () => {
    expect((await cli(['ingest', RBC('valid').annotations, RBC('valid').images, '--name', 'rbc', '--split', 'valid'])).code).toBe(0);
    const added = await cli(['ingest', RBC('test').annotations, RBC('test').images, '--split', 'test', '--into', 'rbc']);
    expect(added.code).toBe(0);
    expect(added.stdout.startsWith(`Added ${TEST.images.length} images, ${TEST.annotations.length} annotations and 3 categories as split "test" of dataset "rbc"`)).toBe(true);
    const list = JSON.parse((await cli(['datasets', '--json'])).stdout) as { datasets: { name: string; image_count: number }[] };
    expect(list.datasets.map((d) => [d.name, d.image_count])).toEqual([['rbc', VALID.images.length + TEST.images.length]]);
    const unknown = await cli(['ingest', RBC('test').annotations, RBC('test').images, '--split', 'x', '--into', 'nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/^datavisor: ingest failed \(NOT_FOUND\): [^\n]*nope[^\n]*\n$/);
  });
});
