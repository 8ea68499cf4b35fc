import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startHarness, type Harness } from '../graphql/harness.js';
import { parseSse } from '../rest/helpers.js';

/**
 * Evaluation over REST, GraphQL and the CLI on one real server, with pycocotools' answers for
 * reference case 02 (tied scores) as the oracle.
 */

const CASE = path.resolve(import.meta.dirname, '../fixtures/eval-reference/cases/02-tied-scores');
let expected: {
  metrics: Record<string, number>;
  per_category: { category_id: number; ap: number }[];
  matching: { per_image: Record<string, { tp: number; fp: number; fn: number }> };
};

let h: Harness;
let id: string;
let dir: string;

beforeAll(async () => {
  expected = JSON.parse(await fs.readFile(path.join(CASE, 'expected.json'), 'utf8'));
  h = await startHarness();
  dir = path.join(h.tmp, 'case');
  await fs.mkdir(dir);
  for (const f of ['gt.json', 'results.json']) await fs.copyFile(path.join(CASE, f), path.join(dir, f));
  id = await h.ingest(path.join(dir, 'gt.json'), dir, { datasetName: 'tied' });
  const res = await fetch(`${h.base}/datasets/${id}/predictions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ results_path: path.join(dir, 'results.json'), name: 'model' }),
  });
  expect(parseSse(await res.text()).at(-1)).toMatchObject({ stage: 'complete' });
});
afterAll(() => h?.close());

const postEvaluation = (body: unknown) =>
  fetch(`${h.base}/datasets/${id}/evaluations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('REST', () => {
  it('POST answers 201 with the contract\'s Evaluation; GET answers it again; curves and samples filtered on outcomes', async () => {
    const res = await postEvaluation({ predictions: 'model' });
    expect(res.status).toBe(201);
    const e = (await res.json()) as { id: string; metrics: Record<string, number>; per_category: { category_id: number; name: string; ap: number }[]; state: string };
    expect(e).toMatchObject({ dataset_id: id, predictions: 'model', iou_type: 'bbox', state: 'current' });
    for (const [k, v] of Object.entries(expected.metrics)) expect(Math.abs(e.metrics[k]! - v)).toBeLessThanOrEqual(1e-9);
    expect(e.per_category.map((c) => [c.category_id, c.name])).toEqual([[1, 'widget']]);

    const again = (await (await fetch(`${h.base}/datasets/${id}/evaluations/${e.id}`)).json()) as { metrics: unknown };
    expect(again.metrics).toEqual(e.metrics);
    const list = (await (await fetch(`${h.base}/datasets/${id}/evaluations`)).json()) as { evaluations: { id: string }[] };
    expect(list.evaluations.map((x) => x.id)).toContain(e.id);

    const curves = (await (await fetch(`${h.base}/datasets/${id}/evaluations/${e.id}/curves`)).json()) as { recall: number[]; curves: { iou: number; precision: number[] }[] };
    expect(curves.recall).toHaveLength(101);
    expect(curves.curves).toHaveLength(10);
    // AP50 is the mean of the IoU 0.5 curve's 101 precisions.
    const ap50 = curves.curves.find((c) => c.iou === 0.5)!.precision.reduce((a, b) => a + b, 0) / 101;
    expect(Math.abs(ap50 - expected.metrics.ap50!)).toBeLessThanOrEqual(1e-9);

    const withFp = Object.entries(expected.matching.per_image).filter(([, v]) => v.fp > 0).map(([k]) => Number(k)).sort((a, b) => a - b);
    const page = (await (await fetch(`${h.base}/samples?dataset_id=${id}&evaluation=${e.id}&evaluation_has=fp`)).json()) as { items: { id: number }[] };
    expect(page.items.map((s) => s.id).sort((a, b) => a - b)).toEqual(withFp);
  });

  it('answers 404 for an unknown run or evaluation, 400 for a bad iou_type, 409 for segm without shapes', async () => {
    expect((await postEvaluation({ predictions: 'nope' })).status).toBe(404);
    expect((await postEvaluation({ predictions: 'model', iou_type: 'keypoints' })).status).toBe(400);
    const segm = await postEvaluation({ predictions: 'model', iou_type: 'segm' });
    expect(segm.status).toBe(409);
    expect(((await segm.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringMatching(/--shapes/) });
    expect((await fetch(`${h.base}/datasets/${id}/evaluations/aaaaaaaaaaaaaaaa`)).status).toBe(404);
    expect((await fetch(`${h.base}/samples?dataset_id=${id}&evaluation=aaaaaaaaaaaaaaaa`)).status).toBe(404);
  });
});

describe('GraphQL', () => {
  it('evaluate returns metrics and per-category numbers; Sample.evaluation and SampleFilter.evaluation use the stored outcomes', async () => {
    const r = await h.gql(
      `mutation($id: ID!) { evaluate(input: { datasetId: $id, predictions: "model", iouType: bbox }) {
         id stale metrics { ap ap50 ap75 apSmall apMedium apLarge ar1 ar10 ar100 arSmall arMedium arLarge }
         perCategory { categoryId name ap } totals { tp fp fn } confusionMatrix { categoryIds rows { categoryId counts } }
       } }`,
      { id },
    );
    expect(r.errors).toBeUndefined();
    const e = r.data.evaluate;
    expect(Math.abs(e.metrics.ap - expected.metrics.ap!)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(e.metrics.arLarge - expected.metrics.ar_large!)).toBeLessThanOrEqual(1e-9);
    expect(e.perCategory).toEqual([{ categoryId: 1, name: 'widget', ap: expect.closeTo(expected.per_category[0]!.ap, 9) }]);
    const cells = e.confusionMatrix.rows.flatMap((row: { counts: number[] }) => row.counts).reduce((a: number, b: number) => a + b, 0);
    expect(cells).toBe(e.totals.tp + e.totals.fp + e.totals.fn);

    const page = await h.gql(
      `query($id: ID!, $e: ID!) { dataset(id: $id) {
         all: samples(first: 50) { edges { node { sampleId evaluation(id: $e) { tp fp fn } } } }
         fn: samples(first: 50, filter: { evaluation: { id: $e, has: [FN] } }) { totalCount }
       } }`,
      { id, e: e.id },
    );
    expect(page.errors).toBeUndefined();
    const got = Object.fromEntries(page.data.dataset.all.edges.map((x: { node: { sampleId: number; evaluation: object } }) => [String(x.node.sampleId), x.node.evaluation]));
    expect(got).toEqual(Object.fromEntries(Object.entries(expected.matching.per_image).map(([k, v]) => [k, { tp: v.tp, fp: v.fp, fn: v.fn }])));
    expect(page.data.dataset.fn.totalCount).toBe(Object.values(expected.matching.per_image).filter((v) => v.fn > 0).length);
  });

  it('an evaluation of another dataset is NOT_FOUND in a filter, a bad outcome BAD_USER_INPUT', async () => {
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(filter: { evaluation: { id: "aaaaaaaaaaaaaaaa" } }) { totalCount } } }`, { id });
    expect(codes(r)).toEqual(['NOT_FOUND']);
    const bad = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(filter: { evaluation: { id: "x" } }) { totalCount } } }`, { id });
    expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('CLI', () => {
  it('datavisor evaluate prints pycocotools\' 12 lines, and --json the contract\'s object', async () => {
    // A database of its own: the server above holds its file.
    const BIN = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
    const env = {
      ...process.env, DATAVISOR_DB_PATH: path.join(h.tmp, 'cli.duckdb'), DATAVISOR_DATA_ROOTS: h.tmp,
      DATAVISOR_PLUGIN_DIR: path.join(h.tmp, 'plugins'), DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    };
    const run = (args: string[]) => promisify(execFile)(process.execPath, [BIN, ...args], { env });
    await run(['ingest', '--name', 'tied', path.join(dir, 'gt.json'), dir]);
    await run(['predictions', 'import', 'tied', path.join(dir, 'results.json'), '--name', 'model']);
    const { stdout } = await run(['evaluate', 'tied', '--predictions', 'model']);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(12);
    const fmt = (v: number) => v.toFixed(3);
    expect(lines[0]).toBe(` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ${fmt(expected.metrics.ap!)}`);
    expect(lines[1]).toBe(` Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = ${fmt(expected.metrics.ap50!)}`);
    expect(lines[3]).toBe(` Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = ${fmt(expected.metrics.ap_small!)}`);
    expect(lines[6]).toBe(` Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = ${fmt(expected.metrics.ar1!)}`);
    expect(lines[11]).toBe(` Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = ${fmt(expected.metrics.ar_large!)}`);
    const json = JSON.parse((await run(['evaluate', 'tied', '--predictions', 'model', '--json'])).stdout) as { evaluation: { metrics: Record<string, number> } };
    expect(Math.abs(json.evaluation.metrics.ap75! - expected.metrics.ap75!)).toBeLessThanOrEqual(1e-9);
  });
});
