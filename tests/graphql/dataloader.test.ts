import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeSyntheticCoco } from '../helpers/fixtures.js';
import { DEMO_IMAGES, DEMO_JSON, startHarness, type Harness } from './harness.js';

/**
 * Every per-node lookup goes through a DataLoader: the SQL statements a page costs do not grow
 * with its size. `dv.db.queryCount` counts every statement the services run.
 */

let h: Harness;
let big: string;
let coco: string;
let shaped: string;

beforeAll(async () => {
  h = await startHarness();
  // 600 synthetic images (~7 annotations each): more than one page of 200.
  const file = path.join(h.tmp, 'synthetic.json');
  writeSyntheticCoco(file, { images: 600, seed: 3 });
  big = await h.ingest(file, h.tmp);
  coco = await h.ingest();
  for await (const e of h.dv.ingestion.ingest({ annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES, storeShapes: true })) {
    if (e.stage === 'complete') shaped = e.dataset_id!;
  }
}, 120_000);

afterAll(async () => {
  await h?.close();
});

/** Statements of one request, after a first run of the same request has filled the caches. */
async function warmQueriesOf(query: string, variables: Record<string, unknown>) {
  await queriesOf(query, variables);
  return queriesOf(query, variables);
}

async function queriesOf(query: string, variables: Record<string, unknown>) {
  const before = h.dv.db.queryCount;
  const r = await h.gql(query, variables);
  expect(r.errors).toBeUndefined();
  return { count: h.dv.db.queryCount - before, data: r.data };
}

const PAGE = `query($id: ID!, $n: Int) {
  samples(datasetId: $id, first: $n) {
    edges { node {
      id sampleId fileName thumbnailUrl
      annotations { id categoryName bbox { x y w h } }
      dataset { name categories { name annotationCount } }
    } }
  }
}`;

describe('query counts', () => {
  test('a page of 200 samples with annotations, category names and dataset costs what a page of 10 costs', async () => {
    // First request for the dataset: the dataset (also the existence check), the page, the
    // annotations of the page, the categories (names of the annotations and of the dataset).
    const cold = await queriesOf(PAGE, { id: big, n: 10 });
    expect(cold.count).toBe(4);
    // A dataset and its categories never change after ingest: later pages read them from memory.
    const small = await queriesOf(PAGE, { id: big, n: 10 });
    const large = await queriesOf(PAGE, { id: big, n: 200 });
    expect(small.data.samples.edges).toHaveLength(10);
    expect(large.data.samples.edges).toHaveLength(200);
    expect(small.data).toEqual(cold.data);
    const annotations = large.data.samples.edges.reduce((n: number, e: { node: { annotations: unknown[] } }) => n + e.node.annotations.length, 0);
    expect(annotations).toBeGreaterThan(600);
    expect(large.count).toBe(2);
    expect(small.count).toBe(large.count);
  });

  test('the annotations are those of each sample, in file order', async () => {
    const { data } = await queriesOf(PAGE, { id: coco, n: 200 });
    for (const e of data.samples.edges.slice(0, 20)) {
      const sample = await h.dv.samples.get(coco, e.node.sampleId);
      const [expected] = await h.dv.samples.annotationsOf(coco, [sample.ord]);
      expect(e.node.annotations.map((a: { id: string }) => a.id)).toEqual(expected!.map((a) => `${coco}:${a.ord}`));
      expect(e.node.annotations.map((a: { categoryName: string }) => a.categoryName)).toEqual(expected!.map((a) => a.categoryName));
    }
  });

  test('datasets with their categories: one query for the page, one for all the category lists not yet in memory', async () => {
    // Two datasets whose categories nothing has read yet.
    await h.ingest();
    await h.ingest();
    const Q = `{ datasets(first: 10) { edges { node { name categories { name } } } } }`;
    const cold = await queriesOf(Q, {});
    expect(cold.data.datasets.edges).toHaveLength(5);
    expect(cold.data.datasets.edges[0].node.categories.length).toBeGreaterThan(0);
    expect(cold.count).toBe(2);
    const warm = await queriesOf(Q, {});
    expect(warm.data).toEqual(cold.data);
    expect(warm.count).toBe(1);
  });

  test('nodes(ids:) loads the samples of each dataset in one query', async () => {
    const ids = async (id: string) => (await h.gql(`query($id: ID!) { samples(datasetId: $id, first: 30) { edges { node { id } } } }`, { id })).data.samples.edges.map((e: { node: { id: string } }) => e.node.id);
    const mixed = [...(await ids(big)), ...(await ids(coco))];
    const { count, data } = await warmQueriesOf(`query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Sample { fileName dataset { name } } } }`, { ids: mixed });
    expect(data.nodes.map((n: { id: string }) => n.id)).toEqual(mixed);
    // Samples of two datasets (the datasets themselves are in memory by now).
    expect(count).toBe(2);
  });

  test('polygons are read (one more query) only when selected, and only exist with storeShapes', async () => {
    const Q = (fields: string) => `query($id: ID!) { samples(datasetId: $id, first: 20) { edges { node { annotations { ${fields} } } } } }`;
    const plain = await warmQueriesOf(Q('segmentationKind polygonCount'), { id: shaped });
    const shapes = await warmQueriesOf(`query($id: ID!) { samples(datasetId: $id, first: 20) { edges { node { annotations { ...Shape } } } } } fragment Shape on Annotation { segmentationKind polygonCount segmentation }`, { id: shaped });
    expect(shapes.count).toBe(plain.count + 1);
    const first = shapes.data.samples.edges[0].node.annotations[0];
    expect(first.segmentationKind).toBe('polygon');
    expect(Array.isArray(first.segmentation) && first.segmentation.length).toBe(first.polygonCount);
    const none = await queriesOf(Q('segmentation'), { id: coco });
    expect(none.data.samples.edges[0].node.annotations[0].segmentation).toBeNull();
  });

  test('totalCount is counted only when asked for', async () => {
    const without = await warmQueriesOf(`query($id: ID!) { samples(datasetId: $id, first: 5, filter: { minAnnotations: 3 }) { edges { node { id } } } }`, { id: big });
    const withCount = await warmQueriesOf(`query($id: ID!) { samples(datasetId: $id, first: 5, filter: { minAnnotations: 3 }) { totalCount edges { node { id } } } }`, { id: big });
    expect(withCount.count).toBe(without.count + 1);
  });
});
