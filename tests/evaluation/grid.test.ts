import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startHarness, type Harness } from '../graphql/harness.js';

/**
 * The GraphQL page of a grid: samples with their ground truth, a run's predictions and every
 * object's evaluation status, in a number of SQL statements that does not grow with the page.
 */

const IMAGES = 60;
/** Image i: one "cat" box; the model finds it (a TP), adds a background FP on every third image, and misses on every fifth. */
function files() {
  const images = Array.from({ length: IMAGES }, (_, i) => ({ id: 1000 + i, file_name: `${i}.jpg`, width: 200, height: 200 }));
  const annotations = images.map((img, i) => ({ id: i + 1, image_id: img.id, category_id: 1, bbox: [10, 10, 50, 50], area: 2500, iscrowd: 0 }));
  const results: object[] = [];
  images.forEach((img, i) => {
    if (i % 5 !== 0) results.push({ image_id: img.id, category_id: 1, bbox: [11, 11, 50, 50], score: 0.9 });
    if (i % 3 === 0) results.push({ image_id: img.id, category_id: 1, bbox: [150, 150, 20, 20], score: 0.3 });
  });
  return { gt: { images, annotations, categories: [{ id: 1, name: 'cat' }] }, results };
}

let h: Harness;
let id: string;
let evaluationId: string;

beforeAll(async () => {
  h = await startHarness();
  const dir = path.join(h.tmp, 'grid');
  await fs.mkdir(dir);
  const { gt, results } = files();
  await fs.writeFile(path.join(dir, 'gt.json'), JSON.stringify(gt));
  await fs.writeFile(path.join(dir, 'results.json'), JSON.stringify(results));
  id = await h.ingest(path.join(dir, 'gt.json'), dir, { datasetName: 'grid' });
  for await (const e of h.dv.predictions.import({ datasetId: id, resultsPath: path.join(dir, 'results.json'), name: 'model' })) {
    if (e.stage === 'error') throw new Error(e.message);
  }
  evaluationId = (await h.dv.evaluations.evaluate({ datasetId: id, predictions: 'model' })).id;
});
afterAll(() => h?.close());

const PAGE = `query($id: ID!, $e: ID!, $n: Int!) { dataset(id: $id) { samples(first: $n) { edges { node {
  sampleId
  evaluation(id: $e) { tp fp fn }
  groundTruth: annotations { categoryName evaluation(id: $e) { outcome matchedPosition } }
  predictions: annotations(predictions: ["model"], minConfidence: 0.1) { confidence predictions evaluation(id: $e) { outcome iou error } }
} } } } }`;

describe('a grid page with ground truth, predictions and their status', () => {
  it('answers every object\'s status as the construction says', async () => {
    const r = await h.gql(PAGE, { id, e: evaluationId, n: IMAGES });
    expect(r.errors).toBeUndefined();
    const nodes = r.data.dataset.samples.edges.map((e: { node: unknown }) => e.node) as {
      sampleId: number; evaluation: { tp: number; fp: number; fn: number };
      groundTruth: { evaluation: { outcome: string; matchedPosition: number | null } }[];
      predictions: { confidence: number; predictions: string; evaluation: { outcome: string; error: string | null } }[];
    }[];
    expect(nodes).toHaveLength(IMAGES);
    for (const n of nodes) {
      const i = n.sampleId - 1000;
      const found = i % 5 !== 0;
      const extra = i % 3 === 0;
      expect(n.evaluation).toEqual({ tp: found ? 1 : 0, fp: extra ? 1 : 0, fn: found ? 0 : 1 });
      expect(n.groundTruth.map((g) => g.evaluation.outcome)).toEqual([found ? 'tp' : 'fn']);
      expect(n.predictions.map((p) => [p.predictions, p.evaluation.outcome, p.evaluation.error])).toEqual([
        ...(found ? [['model', 'tp', null]] : []),
        ...(extra ? [['model', 'fp', 'background']] : []),
      ]);
    }
  });

  it('costs the same number of SQL statements for 10 samples as for 50 (docs/evaluation.md)', async () => {
    const statements = async (n: number) => {
      const before = h.dv.db.queryCount;
      const r = await h.gql(PAGE, { id, e: evaluationId, n });
      expect(r.errors).toBeUndefined();
      expect(r.data.dataset.samples.edges).toHaveLength(n);
      return h.dv.db.queryCount - before;
    };
    await statements(5); // warms the dataset and category caches
    const small = await statements(10);
    const grid = await statements(50);
    expect(grid).toBe(small);
    // The page, the two annotation lists, the runs, the samples' counts, the two lists' outcomes,
    // and a check per outcome loader that the evaluation is the dataset's.
    expect(grid).toBeLessThanOrEqual(10);
  });

  it('names an unknown run NOT_FOUND', async () => {
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(first: 1) { edges { node { annotations(predictions: ["nope"]) { id } } } } } }`, { id });
    expect(codes(r)).toContain('NOT_FOUND');
  });
});
