import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COCO128, hasShared, readJson } from '../helpers/fixtures.js';
import { codes, DEMO_JSON, readCoco, startHarness, type Harness } from '../graphql/harness.js';
import { expectedOrder, shopCoco, writeShop } from './shop-fixture.js';

/**
 * Sorted sample lists over GraphQL (keyset cursors, forward and backward) and REST (offsets), on
 * the demo dataset, the shop fixture with a prediction run and its evaluation, and coco128 where
 * ../shared is. Every expected order is computed here from the annotation files (or, for an
 * evaluation's counts, read per sample through Sample.evaluation, another query).
 */

let h: Harness;
let demo: string;
let shop: string;
/** The shop fixture with every image sized, evaluated. */
let sized: string;
let evaluationId: string;
const shopFile = shopCoco();

beforeAll(async () => {
  h = await startHarness();
  demo = await h.ingest(DEMO_JSON, undefined, { datasetName: 'demo' });
  const dir = path.join(h.tmp, 'shop');
  const { coco, preds } = await writeShop(dir);
  shop = await h.ingest(coco, dir, { datasetName: 'shop' });
  const sizedFiles = await writeShop(path.join(h.tmp, 'shop-sized'), { sized: true });
  sized = await h.ingest(sizedFiles.coco, path.join(h.tmp, 'shop-sized'), { datasetName: 'shop-sized' });
  for (const [datasetId, resultsPath] of [[shop, preds], [sized, sizedFiles.preds]] as const) {
    for await (const e of h.dv.predictions.import({ datasetId, resultsPath, name: 'model' })) {
      if (e.stage === 'error') throw new Error(`import failed: ${e.message}`);
    }
  }
  evaluationId = (await h.dv.evaluations.evaluate({ datasetId: sized, predictions: 'model' })).id;
}, 60_000);
afterAll(() => h?.close());

type Sort = { field: string; direction?: 'ASC' | 'DESC'; category?: string; predictions?: string; evaluationId?: string; seed?: number };

const PAGE = `query($id: ID!, $s: SampleSort, $f: SampleFilter, $first: Int, $after: String, $last: Int, $before: String) {
  dataset(id: $id) { samples(sort: $s, filter: $f, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { position } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } }`;

interface Page { edges: { cursor: string; node: { position: number } }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null }; totalCount: number }

async function page(id: string, vars: Record<string, unknown>): Promise<Page> {
  const r = await h.gql(PAGE, { id, ...vars });
  expect(r.errors).toBeUndefined();
  return r.data.dataset.samples as Page;
}

/** Every position, paging forward with `first: size`, then backward with `last: size`. */
async function pageThrough(id: string, s: Sort, size: number, f?: Record<string, unknown>): Promise<{ forward: number[]; backward: number[] }> {
  const forward: number[] = [];
  let after: string | null = null;
  for (let guard = 0; guard < 500; guard++) {
    const p = await page(id, { s, f, first: size, after });
    forward.push(...p.edges.map((e) => e.node.position));
    expect(p.pageInfo.hasPreviousPage).toBe(after !== null);
    if (!p.pageInfo.hasNextPage) break;
    after = p.pageInfo.endCursor;
  }
  const backward: number[] = [];
  let before: string | null = null;
  for (let guard = 0; guard < 500; guard++) {
    const p = await page(id, { s, f, last: size, before });
    backward.unshift(...p.edges.map((e) => e.node.position));
    if (!p.pageInfo.hasPreviousPage) break;
    before = p.pageInfo.startCursor;
  }
  return { forward, backward };
}

/** REST's pages of the same sort, by offset; image ids. */
async function restIds(id: string, query: string, limit: number): Promise<number[]> {
  const ids: number[] = [];
  for (let offset = 0; ; offset += limit) {
    const res = await fetch(`${h.base}/samples?dataset_id=${id}&limit=${limit}&offset=${offset}&${query}`);
    expect(res.status).toBe(200);
    const items = ((await res.json()) as { items: { id: number }[] }).items;
    ids.push(...items.map((s) => s.id));
    if (items.length < limit) return ids;
  }
}

/** The test's own implementation of the documented shuffle (docs/curation.md). */
function shuffleKey(ord: number, seed: number): number {
  let x = (ord + Math.imul(seed, 0x9e3779b9)) >>> 0;
  for (let round = 0; round < 2; round++) x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

const REST_FIELD = (s: Sort) =>
  [
    `sort=${s.field.toLowerCase()}`,
    s.direction ? `direction=${s.direction.toLowerCase()}` : '',
    s.category ? `sort_category=${s.category}` : '',
    s.predictions ? `sort_predictions=${s.predictions}` : '',
    s.evaluationId ? `sort_evaluation=${s.evaluationId}` : '',
    s.seed !== undefined ? `seed=${s.seed}` : '',
  ].filter(Boolean).join('&');

describe('sorts on the shop fixture: GraphQL forward and backward, REST by offset', () => {
  const imgs = shopFile.images;
  const annsOf = (ord: number) => shopFile.annotations.filter((a) => a.image_id === imgs[ord]!.id);
  const predsOf = (ord: number) => shopFile.results.filter((r) => r.image_id === imgs[ord]!.id).map((r) => r.score);
  const KEYS: [Sort, (ord: number) => string | number | null][] = [
    [{ field: 'FILE_NAME' }, (o) => imgs[o]!.file_name],
    [{ field: 'FILE_NAME', direction: 'DESC' }, (o) => imgs[o]!.file_name],
    [{ field: 'WIDTH' }, (o) => imgs[o]!.width ?? null],
    [{ field: 'WIDTH', direction: 'DESC' }, (o) => imgs[o]!.width ?? null],
    [{ field: 'HEIGHT', direction: 'DESC' }, (o) => imgs[o]!.height ?? null],
    [{ field: 'PIXELS' }, (o) => (imgs[o]!.width === undefined ? null : imgs[o]!.width! * imgs[o]!.height!)],
    [{ field: 'ANNOTATION_COUNT', direction: 'DESC' }, (o) => annsOf(o).length],
    [{ field: 'CATEGORY_COUNT', category: 'cart', direction: 'DESC' }, (o) => annsOf(o).filter((a) => a.category_id === 2).length],
    [{ field: 'PREDICTION_SCORE_MAX', predictions: 'model', direction: 'DESC' }, (o) => (predsOf(o).length ? Math.max(...predsOf(o)) : null)],
    [{ field: 'PREDICTION_SCORE_MIN', predictions: 'model' }, (o) => (predsOf(o).length ? Math.min(...predsOf(o)) : null)],
    [{ field: 'RANDOM', seed: 42 }, (o) => shuffleKey(o, 42)],
    [{ field: 'RANDOM', seed: 4_000_000_000, direction: 'DESC' }, (o) => shuffleKey(o, 4_000_000_000)],
  ];

  it.each(KEYS)('%o', async (s, key) => {
    const want = expectedOrder(imgs.length, key, s.direction === 'DESC');
    const { forward, backward } = await pageThrough(shop, s, 5);
    expect(forward).toEqual(want);
    expect(backward).toEqual(want);
    expect(await restIds(shop, REST_FIELD(s), 7)).toEqual(want.map((o) => imgs[o]!.id));
  });

  it.each(['TP', 'FP', 'FN'])('%s of the evaluation, descending (counts read per sample through Sample.evaluation)', async (field) => {
    const r = await h.gql(`query($id: ID!, $e: ID!) { dataset(id: $id) { samples(first: 200) { edges { node { position evaluation(id: $e) { tp fp fn } } } } } }`, { id: sized, e: evaluationId });
    expect(r.errors).toBeUndefined();
    const counts = new Map<number, Record<string, number>>(r.data.dataset.samples.edges.map((e: any) => [e.node.position, e.node.evaluation]));
    const key = (o: number) => counts.get(o)![field.toLowerCase()]!;
    // The fixture has samples on both sides of every count, or the order would prove little.
    expect(new Set(imgs.map((_, o) => key(o))).size).toBeGreaterThan(1);
    const s: Sort = { field, evaluationId, direction: 'DESC' };
    const want = expectedOrder(imgs.length, key, true);
    const { forward, backward } = await pageThrough(sized, s, 4);
    expect(forward).toEqual(want);
    expect(backward).toEqual(want);
    expect(await restIds(sized, REST_FIELD(s), 10)).toEqual(want.map((o) => imgs[o]!.id));
  });

  it('a sort within a filter: the filter selects, the sort orders, totalCount counts the filter', async () => {
    const f = { fileNameContainsIgnoreCase: 'JPG' };
    const keep = imgs.map((img, o) => [img, o] as const).filter(([img]) => img.file_name.toLowerCase().includes('jpg'));
    const want = expectedOrder(imgs.length, (o) => annsOf(o).length, true).filter((o) => keep.some(([, k]) => k === o));
    const { forward, backward } = await pageThrough(shop, { field: 'ANNOTATION_COUNT', direction: 'DESC' }, 4, f);
    expect(forward).toEqual(want);
    expect(backward).toEqual(want);
    expect((await page(shop, { s: { field: 'ANNOTATION_COUNT' }, f, first: 1 })).totalCount).toBe(keep.length);
  });
});

describe('sorts on the demo dataset (real JPEGs and their COCO file)', () => {
  it.each<[Sort, string]>([
    [{ field: 'ANNOTATION_COUNT', direction: 'DESC' }, 'annotations'],
    [{ field: 'ANNOTATION_COUNT' }, 'annotations'],
    [{ field: 'PIXELS', direction: 'DESC' }, 'pixels'],
    [{ field: 'HEIGHT' }, 'height'],
    [{ field: 'CATEGORY_COUNT', category: 'star', direction: 'DESC' }, 'stars'],
    [{ field: 'RANDOM', seed: 7 }, 'shuffle'],
  ])('%o', async (s, what) => {
    const coco = await readCoco();
    const count = (id: number, cat?: number) => coco.annotations.filter((a) => a.image_id === id && (cat === undefined || a.category_id === cat)).length;
    const star = coco.categories.find((c) => c.name === 'star')!.id;
    const key = (o: number): number => {
      const img = coco.images[o]!;
      if (what === 'annotations') return count(img.id);
      if (what === 'pixels') return img.width * img.height;
      if (what === 'height') return img.height;
      if (what === 'stars') return count(img.id, star);
      return shuffleKey(o, 7);
    };
    const want = expectedOrder(coco.images.length, key, s.direction === 'DESC');
    const { forward, backward } = await pageThrough(demo, s, 30);
    expect(forward).toEqual(want);
    expect(backward).toEqual(want);
    expect(await restIds(demo, REST_FIELD(s), 50)).toEqual(want.map((o) => coco.images[o]!.id));
  });

  it('the same seed gives the same order in another process\'s database; another seed another order', async () => {
    const other = await startHarness();
    try {
      const again = await other.ingest(DEMO_JSON, undefined, { datasetName: 'demo' });
      const ids = async (hh: Harness, id: string, seed: number) =>
        ((await (await fetch(`${hh.base}/samples?dataset_id=${id}&sort=random&seed=${seed}&limit=200`)).json()) as { items: { id: number }[] }).items.map((s) => s.id);
      expect(await ids(other, again, 99)).toEqual(await ids(h, demo, 99));
      expect(await ids(h, demo, 100)).not.toEqual(await ids(h, demo, 99));
    } finally {
      await other.close();
    }
  });
});

describe.skipIf(!hasShared)('coco128 (../shared)', () => {
  it('annotation count descending and file name: forward and backward equal the order computed from the file', async () => {
    const id = await h.ingest(COCO128.annotations, COCO128.images, { datasetName: 'coco128' });
    const coco = readJson<{ images: { id: number; file_name: string }[]; annotations: { image_id: number }[] }>(COCO128.annotations);
    const perImage = new Map<number, number>();
    for (const a of coco.annotations) perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
    const byCount = expectedOrder(coco.images.length, (o) => perImage.get(coco.images[o]!.id) ?? 0, true);
    expect(await pageThrough(id, { field: 'ANNOTATION_COUNT', direction: 'DESC' }, 25)).toEqual({ forward: byCount, backward: byCount });
    const byName = expectedOrder(coco.images.length, (o) => coco.images[o]!.file_name, false);
    expect((await pageThrough(id, { field: 'FILE_NAME' }, 50)).forward).toEqual(byName);
  });
});

describe('cursors of sorted lists', () => {
  const sorted = { field: 'ANNOTATION_COUNT', direction: 'DESC' };

  it('a cursor of another sort, of file order, or of a sorted list in file order is BAD_USER_INPUT', async () => {
    const bySort = (await page(demo, { s: sorted, first: 3 })).pageInfo.endCursor;
    const plain = (await page(demo, { first: 3 })).pageInfo.endCursor;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ s: { field: 'ANNOTATION_COUNT' }, first: 3, after: bySort }, /made with a different sort/],
      [{ s: sorted, first: 3, after: plain }, /made for file order, not for this sort/],
      [{ first: 3, after: bySort }, /made for a sorted list, not for file order/],
      [{ s: sorted, f: { minWidth: 1 }, first: 3, after: bySort }, /different filter/],
    ];
    for (const [vars, message] of cases) {
      const r = await h.gql(PAGE, { id: demo, ...vars });
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(message);
    }
  });

  it('a cursor whose key was tampered with is BAD_USER_INPUT, not a query error', async () => {
    const cursor = (await page(demo, { s: sorted, first: 3 })).pageInfo.endCursor!;
    const text = Buffer.from(cursor, 'base64url').toString();
    for (const key of ['"five"', '1e999', 'null', '{']) {
      const bad = Buffer.from(text.replace(/:[^:]*$/, `:${key}`)).toString('base64url');
      const r = await h.gql(PAGE, { id: demo, s: sorted, first: 3, after: bad });
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(/is not a cursor of this connection/);
    }
  });

  it('a sorted cursor made before a change of the dataset is refused', async () => {
    const dir = path.join(h.tmp, 'change');
    const { coco, preds } = await writeShop(dir);
    const id = await h.ingest(coco, dir, { datasetName: 'changing' });
    const cursor = (await page(id, { s: sorted, first: 3 })).pageInfo.endCursor;
    for await (const e of h.dv.predictions.import({ datasetId: id, resultsPath: preds, name: 'later' })) expect(e.stage).not.toBe('error');
    const r = await h.gql(PAGE, { id, s: sorted, first: 3, after: cursor });
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toMatch(/has changed since the cursor was made/);
  });
});

describe('bad sorts', () => {
  it.each<[Record<string, unknown>, string, RegExp]>([
    [{ field: 'CATEGORY_COUNT' }, 'BAD_USER_INPUT', /sorting by category_count needs sort\.category/],
    [{ field: 'CATEGORY_COUNT', category: 'unicorn' }, 'BAD_USER_INPUT', /sort\.category: dataset \w+ has no category named "unicorn"/],
    [{ field: 'FILE_NAME', seed: 3 }, 'BAD_USER_INPUT', /sort\.seed is only used when sorting by random, not by file_name/],
    [{ field: 'RANDOM' }, 'BAD_USER_INPUT', /sorting by random needs sort\.seed/],
    [{ field: 'RANDOM', seed: -1 }, 'BAD_USER_INPUT', /sort\.seed must be an integer between 0 and 4294967295/],
    [{ field: 'TP', evaluationId: 'nope!' }, 'BAD_USER_INPUT', /sort\.evaluationId: "nope!" is not an evaluation id/],
    [{ field: 'PREDICTION_SCORE_MAX', predictions: 'nothing' }, 'NOT_FOUND', /nothing/],
    [{ field: 'SIZE' }, 'BAD_USER_INPUT', /SampleSortField/],
  ])('%o: %s', async (s, code, message) => {
    const r = await h.gql(PAGE, { id: demo, s, first: 2 });
    expect(codes(r)).toEqual([code]);
    expect(r.errors![0]!.message).toMatch(message);
  });

  it.each([
    ['sort=size', /query parameter "sort": "size" is not a sort field; use one of file_name, width/],
    ['sort=width&direction=up', /query parameter "direction": "up" is not a direction; use asc or desc/],
    ['seed=3', /query parameter "seed" needs "sort"/],
    ['sort=category_count', /sorting by category_count needs query parameter "sort_category"/],
    ['sort=random&seed=x', /"seed" must be a number/],
    ['sort=width&sorting=asc', /unknown parameter "sorting"/],
  ])('REST %s is a 400 naming it', async (query, message) => {
    const res = await fetch(`${h.base}/samples?dataset_id=${demo}&${query}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BAD_USER_INPUT');
    expect(body.error.message).toMatch(message);
  });
});
