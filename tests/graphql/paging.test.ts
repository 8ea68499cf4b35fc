import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { codes, readCoco, startHarness, type Harness } from './harness.js';

/**
 * Relay paging over every sample of the demo dataset (128 images), forward and backward, checked
 * against the service REST uses (`dv.samples`, offset windows) and against the annotation file itself.
 */

let h: Harness;
let id: string;
let other: string;
let coco: Awaited<ReturnType<typeof readCoco>>;

const PAGE = `query($id: ID!, $filter: SampleFilter, $first: Int, $after: String, $last: Int, $before: String) {
  samples(datasetId: $id, filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id sampleId fileName } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

interface Page {
  totalCount: number;
  edges: { cursor: string; node: { id: string; sampleId: number; fileName: string } }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

async function page(vars: Record<string, unknown>): Promise<Page> {
  const r = await h.gql<{ samples: Page }>(PAGE, { id, ...vars });
  expect(r.errors).toBeUndefined();
  return r.data!.samples;
}

/** Every sample id of a listing, paging with `size` forward (or backward), with the pages' pageInfo. */
async function walk(direction: 'forward' | 'backward', size: number, filter?: object) {
  const ids: number[] = [];
  const infos: Page['pageInfo'][] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const p: Page =
      direction === 'forward'
        ? await page({ filter, first: size, after: cursor })
        : await page({ filter, last: size, before: cursor });
    infos.push(p.pageInfo);
    const pageIds = p.edges.map((e) => e.node.sampleId);
    if (direction === 'forward') ids.push(...pageIds);
    else ids.unshift(...pageIds);
    const more = direction === 'forward' ? p.pageInfo.hasNextPage : p.pageInfo.hasPreviousPage;
    if (!more) return { ids, infos, totalCount: p.totalCount };
    cursor = direction === 'forward' ? p.pageInfo.endCursor : p.pageInfo.startCursor;
  }
  throw new Error('paging did not end');
}

/** What the service REST uses lists, in one offset window. */
async function serviceIds(filter: object = {}) {
  const { samples } = await h.dv.samples.page(id, filter, { kind: 'offset', offset: 0, limit: 200 });
  return samples.map((s) => s.id);
}

beforeAll(async () => {
  h = await startHarness();
  id = await h.ingest(undefined, undefined, { split: 'train' });
  other = await h.ingest();
  coco = await readCoco();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('paging through every sample of the demo dataset', () => {
  test('forward with first: 7 sees each sample once, in file order', async () => {
    const { ids, infos, totalCount } = await walk('forward', 7);
    expect(totalCount).toBe(128);
    expect(ids).toEqual(coco.images.map((i) => i.id));
    expect(new Set(ids).size).toBe(128);
    expect(ids).toEqual(await serviceIds());
    expect(infos).toHaveLength(Math.ceil(128 / 7));
    expect(infos[0]!.hasPreviousPage).toBe(false);
    expect(infos.slice(1).every((i) => i.hasPreviousPage)).toBe(true);
    expect(infos.slice(0, -1).every((i) => i.hasNextPage)).toBe(true);
  });

  test('backward with last: 7 sees the same samples in the same order', async () => {
    const { ids, infos, totalCount } = await walk('backward', 7);
    expect(totalCount).toBe(128);
    expect(ids).toEqual(coco.images.map((i) => i.id));
    expect(infos[0]!.hasNextPage).toBe(false);
    expect(infos.slice(1).every((i) => i.hasNextPage)).toBe(true);
    expect(infos.at(-1)!.hasPreviousPage).toBe(false);
  });

  test('a page backward from a forward page ends where it started', async () => {
    const p1 = await page({ first: 7 });
    const p2 = await page({ first: 7, after: p1.pageInfo.endCursor });
    const back = await page({ last: 7, before: p2.pageInfo.startCursor });
    expect(back.edges.map((e) => e.node.id)).toEqual(p1.edges.map((e) => e.node.id));
    expect(back.pageInfo.hasPreviousPage).toBe(false);
    expect(back.pageInfo.hasNextPage).toBe(true);
  });

  test('the last page and past it', async () => {
    const all = await page({ first: 200 });
    expect(all.edges).toHaveLength(128);
    expect(all.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    const past = await page({ first: 5, after: all.pageInfo.endCursor });
    expect(past.edges).toEqual([]);
    expect(past.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true, startCursor: null, endCursor: null });
    const none = await page({ first: 0 });
    expect(none.edges).toEqual([]);
    expect(none.pageInfo.hasNextPage).toBe(true);
  });

  test('Dataset.samples pages the same way as Query.samples', async () => {
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(first: 3) { totalCount edges { cursor node { sampleId } } } } }`, { id });
    const q = await page({ first: 3 });
    expect(r.data.dataset.samples.totalCount).toBe(128);
    expect(r.data.dataset.samples.edges).toEqual(q.edges.map((e) => ({ cursor: e.cursor, node: { sampleId: e.node.sampleId } })));
  });
});

describe('SampleFilter', () => {
  const imagesWith = (pred: (a: (typeof coco.annotations)[number]) => boolean) => {
    const hit = new Set(coco.annotations.filter(pred).map((a) => a.image_id));
    return coco.images.filter((i) => hit.has(i.id)).map((i) => i.id);
  };
  const categoryId = (name: string) => coco.categories.find((c) => c.name === name)!.id;
  const annotationCounts = () => {
    const n = new Map<number, number>();
    for (const a of coco.annotations) n.set(a.image_id, (n.get(a.image_id) ?? 0) + 1);
    return n;
  };

  test('category: the images with a triangle annotation, as the file has them', async () => {
    const expected = imagesWith((a) => a.category_id === categoryId('triangle'));
    expect(expected.length).toBeGreaterThan(7);
    const { ids, totalCount } = await walk('forward', 7, { category: 'triangle' });
    expect(totalCount).toBe(expected.length);
    expect(ids).toEqual(expected);
    expect(ids).toEqual(await serviceIds({ categories: ['triangle'] }));
    expect(await h.dv.samples.count(id, { categories: ['triangle'] })).toBe(totalCount);
  });

  test('categories: any of the names; category joins them', async () => {
    const wanted = new Set([categoryId('square'), categoryId('diamond'), categoryId('star')]);
    const expected = imagesWith((a) => wanted.has(a.category_id));
    const a = await walk('forward', 7, { categories: ['square', 'diamond', 'star'] });
    expect(a.ids).toEqual(expected);
    expect(a.totalCount).toBe(expected.length);
    const b = await walk('backward', 4, { category: 'square', categories: ['diamond', 'star'] });
    expect(b.ids).toEqual(expected);
    expect((await page({ filter: { categories: ['no such category'] }, first: 10 })).totalCount).toBe(0);
  });

  test('split', async () => {
    expect((await page({ filter: { split: 'train' }, first: 1 })).totalCount).toBe(128);
    expect((await page({ filter: { split: 'val' }, first: 1 })).totalCount).toBe(0);
  });

  test('fileNameContains is a case-sensitive substring', async () => {
    const expected = coco.images.filter((i) => i.file_name.includes('demo_00002')).map((i) => i.id);
    expect(expected.length).toBeGreaterThan(3);
    const r = await walk('forward', 3, { fileNameContains: 'demo_00002' });
    expect(r.ids).toEqual(expected);
    expect((await page({ filter: { fileNameContains: '.JPG' }, first: 1 })).totalCount).toBe(0);
  });

  test('minAnnotations / maxAnnotations', async () => {
    const counts = annotationCounts();
    const expected = coco.images.filter((i) => (counts.get(i.id) ?? 0) >= 5).map((i) => i.id);
    expect(expected.length).toBeGreaterThan(0);
    expect((await walk('forward', 7, { minAnnotations: 5 })).ids).toEqual(expected);
    const empty = coco.images.filter((i) => !counts.has(i.id)).map((i) => i.id);
    expect(empty.length).toBeGreaterThan(0);
    expect((await walk('forward', 7, { maxAnnotations: 0 })).ids).toEqual(empty);
  });

  test('isCrowd and the bbox area range', async () => {
    expect((await walk('forward', 7, { isCrowd: true })).ids).toEqual(imagesWith((a) => a.iscrowd === 1));
    const big = imagesWith((a) => a.bbox[2]! * a.bbox[3]! >= 30_000);
    expect(big.length).toBeGreaterThan(0);
    expect((await walk('forward', 7, { minBboxArea: 30_000 })).ids).toEqual(big);
    const band = imagesWith((a) => a.bbox[2]! * a.bbox[3]! >= 5000 && a.bbox[2]! * a.bbox[3]! <= 10_000 && a.category_id === categoryId('triangle'));
    expect(band.length).toBeGreaterThan(0);
    expect((await walk('forward', 7, { minBboxArea: 5000, maxBboxArea: 10_000, category: 'triangle' })).ids).toEqual(band);
  });

  test('filters combine with AND', async () => {
    const counts = annotationCounts();
    const triangle = new Set(imagesWith((a) => a.category_id === categoryId('triangle')));
    const expected = coco.images.filter((i) => triangle.has(i.id) && (counts.get(i.id) ?? 0) >= 3 && i.file_name.includes('demo_0000')).map((i) => i.id);
    expect(expected.length).toBeGreaterThan(0);
    expect((await walk('forward', 5, { category: 'triangle', minAnnotations: 3, fileNameContains: 'demo_0000' })).ids).toEqual(expected);
  });
});

describe('cursors', () => {
  test('a cursor from another filter, another dataset, or made up is BAD_USER_INPUT', async () => {
    const p = await page({ filter: { category: 'triangle' }, first: 2 });
    const cursor = p.pageInfo.endCursor;
    const sameFilterReordered = await h.gql(PAGE, { id, filter: { categories: ['triangle', 'triangle'] }, first: 2, after: cursor });
    expect(sameFilterReordered.errors).toBeUndefined();

    const otherFilter = await h.gql(PAGE, { id, filter: { category: 'square' }, first: 2, after: cursor });
    expect(codes(otherFilter)).toEqual(['BAD_USER_INPUT']);
    expect(otherFilter.errors![0]!.message).toMatch(/different filter/);
    expect(otherFilter.status).toBe(400);

    const otherDataset = await h.gql(PAGE, { id: other, filter: { category: 'triangle' }, first: 2, after: cursor });
    expect(codes(otherDataset)).toEqual(['BAD_USER_INPUT']);
    expect(otherDataset.errors![0]!.message).toMatch(/belongs to dataset/);

    for (const bad of ['garbage', '', 'UzE6eHh4OjE6YWJjZGVmZ2g', Buffer.from('S1:abc:-1:abcdefgh').toString('base64url'), 'x'.repeat(300)]) {
      const r = await h.gql(PAGE, { id, first: 2, after: bad });
      expect(codes(r), bad).toEqual(['BAD_USER_INPUT']);
      const b = await h.gql(PAGE, { id, last: 2, before: bad });
      expect(codes(b), bad).toEqual(['BAD_USER_INPUT']);
    }
    const datasetsCursor = (await h.gql('{ datasets(first: 1) { pageInfo { endCursor } } }')).data.datasets.pageInfo.endCursor;
    expect(codes(await h.gql(PAGE, { id, first: 2, after: datasetsCursor }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await h.gql('query($c: String) { datasets(first: 1, after: $c) { totalCount } }', { c: cursor }))).toEqual(['BAD_USER_INPUT']);
  });

  test('page sizes and argument combinations', async () => {
    for (const vars of [{ first: 201 }, { last: 201 }, { first: -1 }, { last: -3 }, { first: 2, last: 2 }]) {
      const r = await h.gql(PAGE, { id, ...vars });
      expect(codes(r), JSON.stringify(vars)).toEqual(['BAD_USER_INPUT']);
      expect(r.data ?? null).toBeNull();
    }
    const big = await h.gql(PAGE, { id, first: 201 });
    expect(big.errors![0]!.message).toBe('first must be an integer between 0 and 200, got 201');
    const cursor = (await page({ first: 1 })).pageInfo.endCursor;
    expect(codes(await h.gql(PAGE, { id, first: 2, before: cursor }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await h.gql(PAGE, { id, last: 2, after: cursor }))).toEqual(['BAD_USER_INPUT']);
    // Neither first nor last: a default page of 50.
    expect((await page({})).edges).toHaveLength(50);
  });
});

describe('datasets connection', () => {
  test('newest first, paged by cursor both ways, with totalCount', async () => {
    const third = await h.ingest(undefined, undefined, { datasetName: 'third' });
    const list = (await h.dv.datasets.list()).map((d) => d.id);
    expect(list[0]).toBe(third);
    const Q = `query($first: Int, $after: String, $last: Int, $before: String) {
      datasets(first: $first, after: $after, last: $last, before: $before) {
        totalCount edges { cursor node { id datasetId name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }`;
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const r = await h.gql(Q, { first: 1, after });
      expect(r.data.datasets.totalCount).toBe(list.length);
      seen.push(...r.data.datasets.edges.map((e: { node: { datasetId: string } }) => e.node.datasetId));
      if (!r.data.datasets.pageInfo.hasNextPage) break;
      after = r.data.datasets.pageInfo.endCursor;
    }
    expect(seen).toEqual(list);
    const back = await h.gql(Q, { last: 2 });
    expect(back.data.datasets.edges.map((e: { node: { datasetId: string } }) => e.node.datasetId)).toEqual(list.slice(-2));
    expect(back.data.datasets.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
    const before = await h.gql(Q, { last: 5, before: back.data.datasets.pageInfo.startCursor });
    expect(before.data.datasets.edges.map((e: { node: { datasetId: string } }) => e.node.datasetId)).toEqual(list.slice(0, -2));
    expect(codes(await h.gql(Q, { first: 201 }))).toEqual(['BAD_USER_INPUT']);
  });
});
