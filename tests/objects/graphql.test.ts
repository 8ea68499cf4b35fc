import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COCO128, hasShared, readJson } from '../helpers/fixtures.js';
import { codes, startHarness, type Harness } from '../graphql/harness.js';

/**
 * Dataset.objects over GraphQL: evaluation outcomes as rows against pycocotools' matching of
 * reference case 01 (crowd regions, categories without ground truth), sorts, statement counts on
 * the demo dataset, and every "person" box of coco128 when ../shared is there.
 */

const CASE = path.resolve(import.meta.dirname, '../fixtures/eval-reference/cases/01-crowd-and-empty');
type Box = [number, number, number, number];
interface Expected {
  matching: {
    detections: { index: number; evaluated: boolean; tp: boolean; ignored: boolean; gt_id: number | null }[];
    ground_truth: { gt_id: number; ignored: boolean; dt_id: number | null }[];
  };
}
interface Gt { images: { id: number }[]; annotations: { id: number; image_id: number; bbox: Box }[] }
interface Result { image_id: number; category_id: number; bbox: Box; score: number }

let h: Harness;
let caseId: string;
let demoId: string;
let evaluationId: string;
let expected: Expected;
let gt: Gt;
let results: Result[];

beforeAll(async () => {
  h = await startHarness();
  const dir = path.join(h.tmp, 'case');
  await fs.mkdir(dir);
  for (const f of ['gt.json', 'results.json']) await fs.copyFile(path.join(CASE, f), path.join(dir, f));
  expected = readJson<Expected>(path.join(CASE, 'expected.json'));
  gt = readJson<Gt>(path.join(dir, 'gt.json'));
  results = readJson<Result[]>(path.join(dir, 'results.json'));
  caseId = await h.ingest(path.join(dir, 'gt.json'), dir);
  for await (const e of h.dv.predictions.import({ datasetId: caseId, resultsPath: path.join(dir, 'results.json'), name: 'model' })) {
    if (e.stage === 'error') throw new Error(e.message);
  }
  evaluationId = (await h.dv.evaluations.evaluate({ datasetId: caseId, predictions: 'model', iouType: 'bbox' })).id;
  demoId = await h.ingest();
}, 120_000);
afterAll(() => h?.close());

const OBJECTS = `query($id: ID!, $filter: SampleFilter, $objects: ObjectFilter, $sort: ObjectSort, $first: Int, $after: String, $eval: ID!) {
  dataset(id: $id) { objects(filter: $filter, objects: $objects, sort: $sort, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id position annotationId bbox { x y w h } area isCrowd confidence labelSet category { name } sample { sampleId } evaluation(id: $eval) { outcome iou error } } }
  } }
}`;

interface Node { position: number; annotationId: number; bbox: { x: number; y: number; w: number; h: number }; confidence: number | null; labelSet: string; sample: { sampleId: number }; evaluation: { outcome: string; iou: number | null; error: string | null } | null }

async function objects(variables: Record<string, unknown>): Promise<{ nodes: Node[]; total: number }> {
  const r = await h.gql(OBJECTS, { id: caseId, eval: evaluationId, first: 200, ...variables });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return { nodes: r.data.dataset.objects.edges.map((e: { node: Node }) => e.node), total: r.data.dataset.objects.totalCount };
}

const box = (n: Node): Box => [n.bbox.x, n.bbox.y, n.bbox.w, n.bbox.h];
const imageOrd = () => new Map(gt.images.map((im, i) => [im.id, i]));

function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const hh = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inter = w * hh;
  return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

describe('evaluation outcomes as rows', () => {
  it('every false positive of the run, as pycocotools matched them, in file order', async () => {
    const order = imageOrd();
    const fps = expected.matching.detections.filter((d) => d.evaluated && !d.tp && !d.ignored).map((d) => ({ ...results[d.index]!, index: d.index }));
    fps.sort((a, b) => order.get(a.image_id)! - order.get(b.image_id)! || a.index - b.index);
    expect(fps.length).toBeGreaterThan(1);
    const { nodes, total } = await objects({ objects: { evaluation: { id: evaluationId, outcomes: ['FP'] } } });
    expect(nodes.map((n) => [n.sample.sampleId, box(n), n.confidence])).toEqual(fps.map((d) => [d.image_id, d.bbox, d.score]));
    expect(total).toBe(fps.length);
    expect(nodes.every((n) => n.labelSet === 'model' && n.evaluation?.outcome === 'fp')).toBe(true);
    // The same with the TIDE error kinds of false positives.
    const byErrors = await objects({ objects: { evaluation: { id: evaluationId, errors: ['CLASSIFICATION', 'LOCALIZATION', 'BOTH', 'DUPLICATE', 'BACKGROUND'] } } });
    expect(byErrors.nodes.map((n) => n.position)).toEqual(nodes.map((n) => n.position));
  });

  it('every missed ground-truth object (FN, or the error MISSED)', async () => {
    const missed = expected.matching.ground_truth.filter((g) => g.dt_id === null && !g.ignored).map((g) => g.gt_id);
    expect(missed.length).toBeGreaterThan(0);
    const fn = await objects({ objects: { labelSet: 'ground_truth', evaluation: { id: evaluationId, outcomes: ['FN'] } } });
    expect(fn.nodes.map((n) => n.annotationId).sort((a, b) => a - b)).toEqual([...missed].sort((a, b) => a - b));
    expect(fn.nodes.every((n) => n.evaluation?.error === 'missed')).toBe(true);
    const byError = await objects({ objects: { labelSet: 'ground_truth', evaluation: { id: evaluationId, errors: ['MISSED'] } } });
    expect(byError.nodes.map((n) => n.position)).toEqual(fn.nodes.map((n) => n.position));
  });

  it('true positives by IoU with the object each took, highest first', async () => {
    const gtBox = new Map(gt.annotations.map((a) => [a.id, a.bbox]));
    const tps = expected.matching.detections.filter((d) => d.tp).map((d) => iou(results[d.index]!.bbox, gtBox.get(d.gt_id!)!));
    const { nodes } = await objects({ objects: { evaluation: { id: evaluationId, outcomes: ['TP'] } }, sort: { field: 'IOU', direction: 'DESC' } });
    expect(nodes.map((n) => n.evaluation!.iou!)).toEqual([...tps].sort((a, b) => b - a).map((v) => expect.closeTo(v, 9)));
  });

  it('the run by confidence, ties on position, paged 3 at a time', async () => {
    const expectedOrder = results.map((r, index) => ({ ...r, index })).sort((a, b) => a.score - b.score || a.index - b.index);
    const seen: Node[] = [];
    let after: string | null = null;
    for (;;) {
      const r = await h.gql(OBJECTS, { id: caseId, eval: evaluationId, objects: { labelSet: 'model' }, sort: { field: 'CONFIDENCE' }, first: 3, after });
      expect(r.errors).toBeUndefined();
      const c = r.data.dataset.objects;
      seen.push(...c.edges.map((e: { node: Node }) => e.node));
      if (!c.pageInfo.hasNextPage) break;
      after = c.pageInfo.endCursor;
    }
    expect(seen.map((n) => [box(n), n.confidence])).toEqual(expectedOrder.map((r) => [r.bbox, r.score]));
  });

  it('BAD_USER_INPUT for conditions that cannot hold, NOT_FOUND for an unknown evaluation', async () => {
    const run = (variables: Record<string, unknown>) => h.gql(OBJECTS, { id: caseId, eval: evaluationId, ...variables });
    const iouWithout = await run({ sort: { field: 'IOU' } });
    expect(codes(iouWithout)).toEqual(['BAD_USER_INPUT']);
    expect(iouWithout.errors![0]!.message).toMatch(/iou needs an evaluation/);
    const fnOfRun = await run({ objects: { evaluation: { id: evaluationId, outcomes: ['FN'] } } });
    expect(codes(fnOfRun)).toEqual(['BAD_USER_INPUT']);
    expect(fnOfRun.errors![0]!.message).toMatch(/ground_truth/);
    expect(codes(await run({ objects: { labelSet: ' ' } }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await run({ first: 201 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await run({ objects: { evaluation: { id: 'aaaaaaaaaaaaaaaa' } } }))).toEqual(['NOT_FOUND']);
  });
});

describe('statements per page', () => {
  const PAGE = `query($id: ID!, $n: Int) { dataset(id: $id) { objects(first: $n) { edges { node {
    id bbox { x y w h } category { name } cropUrl(size: SMALL) sample { fileName thumbnailUrl }
  } } } } }`;

  async function statements(n: number): Promise<number> {
    const run = async () => {
      const before = h.dv.db.queryCount;
      const r = await h.gql(PAGE, { id: demoId, n });
      expect(r.errors).toBeUndefined();
      expect(r.data.dataset.objects.edges).toHaveLength(n);
      return h.dv.db.queryCount - before;
    };
    await run();
    return run();
  }

  it('a page of 200 objects with samples, categories and crop URLs costs the statements of a page of 5', async () => {
    const small = await statements(5);
    const large = await statements(200);
    // The page, and its samples through the Sample DataLoader (the dataset and categories are in memory).
    expect(large).toBe(2);
    expect(small).toBe(large);
  });
});

describe.skipIf(!hasShared)('coco128', () => {
  const PERSON = `query($id: ID!, $after: String) { dataset(id: $id) { objects(objects: { categories: ["person"] }, first: 100, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { annotationId bbox { x y w h } sample { sampleId } } } } } }`;
  it('lists every "person" box of the file, in file order', async () => {
    const id = await h.ingest(COCO128.annotations, COCO128.images);
    const coco = readJson<{ images: { id: number }[]; annotations: { id: number; image_id: number; category_id: number; bbox: Box }[]; categories: { id: number; name: string }[] }>(COCO128.annotations);
    const person = coco.categories.find((c) => c.name === 'person')!.id;
    const order = new Map(coco.images.map((im, i) => [im.id, i]));
    const expectedBoxes = coco.annotations
      .map((a, ord) => ({ ...a, ord }))
      .filter((a) => a.category_id === person)
      .sort((a, b) => order.get(a.image_id)! - order.get(b.image_id)! || a.ord - b.ord);
    const seen: Node[] = [];
    let after: string | null = null;
    for (;;) {
      const r = await h.gql(PERSON, { id, after });
      expect(r.errors).toBeUndefined();
      const c = r.data.dataset.objects;
      seen.push(...c.edges.map((e: { node: Node }) => e.node));
      if (!c.pageInfo.hasNextPage) break;
      after = c.pageInfo.endCursor;
    }
    expect(seen.map((n) => [n.annotationId, n.sample.sampleId, box(n)])).toEqual(expectedBoxes.map((a) => [a.id, a.image_id, a.bbox]));
  }, 60_000);
});
