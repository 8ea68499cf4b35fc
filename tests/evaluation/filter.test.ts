import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startHarness, type Harness } from '../graphql/harness.js';

/**
 * SampleFilter.evaluation by error kind and category (GraphQL, and REST's evaluation_error /
 * evaluation_category). Every expected set below follows from how the predictions are built,
 * not from the evaluator's output.
 */

const IMAGES = 30;
const range = (f: (i: number) => boolean) => Array.from({ length: IMAGES }, (_, i) => i).filter(f).map((i) => 1000 + i);

/**
 * Image i: a cat at [10,10,50,50]; on even i also a dog at [100,100,40,40]. The model:
 *   i % 5 ≠ 0   finds the cat (TP), else misses it;
 *   i % 6 = 1   adds a second cat box over it, lower score (a duplicate; the TP where the first is missing);
 *   i % 7 = 0   adds a cat box at IoU 0.22 with it (localization);
 *   i % 3 = 0   adds a cat box far from everything (background);
 *   i % 4 = 0   calls the dog a cat (classification); the dog is never found (missed on every even i).
 */
function files() {
  const images = Array.from({ length: IMAGES }, (_, i) => ({ id: 1000 + i, file_name: `${i}.jpg`, width: 200, height: 200 }));
  const annotations: object[] = [];
  const results: object[] = [];
  images.forEach((img, i) => {
    annotations.push({ id: annotations.length + 1, image_id: img.id, category_id: 1, bbox: [10, 10, 50, 50], area: 2500, iscrowd: 0 });
    if (i % 2 === 0) annotations.push({ id: annotations.length + 1, image_id: img.id, category_id: 2, bbox: [100, 100, 40, 40], area: 1600, iscrowd: 0 });
    const cat = (bbox: number[], score: number) => results.push({ image_id: img.id, category_id: 1, bbox, score });
    if (i % 5 !== 0) cat([11, 11, 50, 50], 0.9);
    if (i % 6 === 1) cat([12, 12, 50, 50], 0.8);
    if (i % 7 === 0) cat([30, 30, 50, 50], 0.4);
    if (i % 3 === 0) cat([150, 150, 20, 20], 0.3);
    if (i % 4 === 0) cat([100, 100, 40, 40], 0.5);
  });
  return { gt: { images, annotations, categories: [{ id: 1, name: 'cat' }, { id: 2, name: 'dog' }] }, results };
}

let h: Harness;
let id: string;
let evaluationId: string;

beforeAll(async () => {
  h = await startHarness();
  const dir = path.join(h.tmp, 'filter');
  await fs.mkdir(dir);
  const { gt, results } = files();
  await fs.writeFile(path.join(dir, 'gt.json'), JSON.stringify(gt));
  await fs.writeFile(path.join(dir, 'results.json'), JSON.stringify(results));
  id = await h.ingest(path.join(dir, 'gt.json'), dir, { datasetName: 'filter' });
  for await (const e of h.dv.predictions.import({ datasetId: id, resultsPath: path.join(dir, 'results.json'), name: 'model' })) {
    if (e.stage === 'error') throw new Error(e.message);
  }
  evaluationId = (await h.dv.evaluations.evaluate({ datasetId: id, predictions: 'model' })).id;
});
afterAll(() => h?.close());

const QUERY = `query($id: ID!, $f: EvaluationFilter!) { dataset(id: $id) { samples(first: 100, filter: { evaluation: $f }) { totalCount edges { node { sampleId } } } } }`;

async function graphqlIds(f: Record<string, unknown>): Promise<number[]> {
  const r = await h.gql(QUERY, { id, f: { id: evaluationId, ...f } });
  expect(r.errors).toBeUndefined();
  const s = r.data.dataset.samples;
  expect(s.totalCount).toBe(s.edges.length);
  return s.edges.map((e: { node: { sampleId: number } }) => e.node.sampleId);
}

async function restIds(params: [string, string][]): Promise<number[]> {
  const q = new URLSearchParams([['dataset_id', id], ['evaluation', evaluationId], ['limit', '100'], ...params]);
  const res = await fetch(`${h.base}/samples?${q}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: { id: number }[] }).items.map((s) => s.id);
}

const cases: { name: string; filter: Record<string, unknown>; rest: [string, string][]; expected: number[] }[] = [
  { name: 'background errors', filter: { errors: ['BACKGROUND'] }, rest: [['evaluation_error', 'background']], expected: range((i) => i % 3 === 0) },
  { name: 'classification errors', filter: { errors: ['CLASSIFICATION'] }, rest: [['evaluation_error', 'classification']], expected: range((i) => i % 4 === 0) },
  { name: 'localization errors', filter: { errors: ['LOCALIZATION'] }, rest: [['evaluation_error', 'localization']], expected: range((i) => i % 7 === 0) },
  { name: 'duplicates', filter: { errors: ['DUPLICATE'] }, rest: [['evaluation_error', 'duplicate']], expected: range((i) => i % 6 === 1 && i % 5 !== 0) },
  {
    name: 'either of two kinds', filter: { errors: ['DUPLICATE', 'LOCALIZATION'] }, rest: [['evaluation_error', 'duplicate'], ['evaluation_error', 'localization']],
    expected: range((i) => (i % 6 === 1 && i % 5 !== 0) || i % 7 === 0),
  },
  { name: 'missed dogs', filter: { errors: ['MISSED'], categories: ['dog'] }, rest: [['evaluation_error', 'missed'], ['evaluation_category', 'dog']], expected: range((i) => i % 2 === 0) },
  { name: 'missed cats', filter: { has: ['FN'], categories: ['cat'] }, rest: [['evaluation_has', 'fn'], ['evaluation_category', 'cat']], expected: range((i) => i % 5 === 0 && i % 6 !== 1) },
  { name: 'cat TPs', filter: { has: ['TP'], categories: ['cat'] }, rest: [['evaluation_has', 'tp'], ['evaluation_category', 'cat']], expected: range((i) => i % 5 !== 0 || i % 6 === 1) },
  { name: 'dog predictions (there are none)', filter: { has: ['TP', 'FP'], categories: ['dog'] }, rest: [['evaluation_has', 'tp'], ['evaluation_has', 'fp'], ['evaluation_category', 'dog']], expected: [] },
  { name: 'a kind no FN has, asked of FNs', filter: { has: ['FN'], errors: ['BACKGROUND'] }, rest: [['evaluation_has', 'fn'], ['evaluation_error', 'background']], expected: [] },
  { name: 'a category no dataset has', filter: { categories: ['zebra'] }, rest: [['evaluation_category', 'zebra']], expected: [] },
  {
    name: 'outcome, kind and category on one object', filter: { has: ['FP'], errors: ['CLASSIFICATION', 'MISSED'], categories: ['cat'] },
    rest: [['evaluation_has', 'fp'], ['evaluation_error', 'classification'], ['evaluation_error', 'missed'], ['evaluation_category', 'cat']], expected: range((i) => i % 4 === 0),
  },
];

describe('SampleFilter.evaluation by error kind and category', () => {
  for (const c of cases) {
    it(`${c.name}: GraphQL and REST answer the samples the construction says`, async () => {
      expect(await graphqlIds(c.filter)).toEqual(c.expected);
      expect(await restIds(c.rest)).toEqual(c.expected);
    });
  }

  it('every error kind of a sample matches its objects\' errors as Annotation.evaluation reports them', async () => {
    const r = await h.gql(
      `query($id: ID!, $e: ID!) { dataset(id: $id) { samples(first: 100) { edges { node { sampleId
        gt: annotations { evaluation(id: $e) { error } } preds: annotations(predictions: ["model"]) { evaluation(id: $e) { error } } } } } } }`,
      { id, e: evaluationId },
    );
    expect(r.errors).toBeUndefined();
    const byKind = new Map<string, Set<number>>();
    type Objects = { evaluation: { error: string | null } | null }[];
    for (const { node } of r.data.dataset.samples.edges as { node: { sampleId: number; gt: Objects; preds: Objects } }[]) {
      for (const a of [...node.gt, ...node.preds]) if (a.evaluation?.error) (byKind.get(a.evaluation.error) ?? byKind.set(a.evaluation.error, new Set()).get(a.evaluation.error)!).add(node.sampleId);
    }
    for (const kind of ['classification', 'localization', 'both', 'duplicate', 'background', 'missed']) {
      expect(await graphqlIds({ errors: [kind.toUpperCase()] }), kind).toEqual([...(byKind.get(kind) ?? [])].sort((a, b) => a - b));
    }
  });

  it('refuses a bad error kind or an empty list, naming the field (BAD_USER_INPUT / 400), and evaluation_error without evaluation', async () => {
    const bad = await h.gql(`query($id: ID!, $e: ID!) { dataset(id: $id) { samples(filter: { evaluation: { id: $e, categories: [] } }) { totalCount } } }`, { id, e: evaluationId });
    expect(codes(bad)).toContain('BAD_USER_INPUT');
    expect(bad.errors![0]!.message).toContain('filter.evaluation: categories');
    const res = await fetch(`${h.base}/samples?dataset_id=${id}&evaluation=${evaluationId}&evaluation_error=sloppy`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/"sloppy" is not an error kind; use CLASSIFICATION, LOCALIZATION, BOTH, DUPLICATE, BACKGROUND, MISSED/);
    const alone = await fetch(`${h.base}/samples?dataset_id=${id}&evaluation_category=cat`);
    expect(alone.status).toBe(400);
    expect(((await alone.json()) as { error: { message: string } }).error.message).toContain('"evaluation_category" needs "evaluation"');
  });
});
