import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/fixtures.js';
import { codes, DEMO_JSON, readCoco, startHarness, type Harness } from '../graphql/harness.js';
import { shopCoco, writeShop, type ShopAnnotation, type ShopImage } from './shop-fixture.js';

/**
 * The extended sample filter: the same samples over REST's parameters and GraphQL's SampleFilter,
 * equal to the set computed here from the files. The shop fixture carries metadata as unknown
 * image keys; the demo dataset gets its metadata from the example plugin (plugins/example), as a
 * plugin writes it at ingest.
 */

let h: Harness;
let shop: string;
let demo: string;
const file = shopCoco();

beforeAll(async () => {
  h = await startHarness({ env: { DATAVISOR_PLUGIN_DIR: path.join(REPO, 'plugins') } });
  const dir = path.join(h.tmp, 'shop');
  const { coco, preds } = await writeShop(dir);
  shop = await h.ingest(coco, dir, { datasetName: 'shop' });
  for await (const e of h.dv.predictions.import({ datasetId: shop, resultsPath: preds, name: 'model' })) {
    if (e.stage === 'error') throw new Error(`import failed: ${e.message}`);
  }
  demo = await h.ingest(DEMO_JSON, undefined, { datasetName: 'demo' });
}, 60_000);
afterAll(() => h?.close());

async function restIds(id: string, query: string): Promise<number[]> {
  const res = await fetch(`${h.base}/samples?dataset_id=${id}&limit=200&${query}`);
  const body = (await res.json()) as { items: { id: number }[]; error?: unknown };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.items.map((s) => s.id);
}

async function graphIds(id: string, filter: Record<string, unknown>): Promise<number[]> {
  const r = await h.gql(`query($id: ID!, $f: SampleFilter) { dataset(id: $id) { samples(filter: $f, first: 200) { edges { node { sampleId } } totalCount } } }`, { id, f: filter });
  expect(r.errors).toBeUndefined();
  const ids = r.data.dataset.samples.edges.map((e: { node: { sampleId: number } }) => e.node.sampleId);
  expect(r.data.dataset.samples.totalCount).toBe(ids.length);
  return ids;
}

type Pred = { category_id: number; bbox: number[]; score: number };
type Keep = (img: ShopImage, anns: ShopAnnotation[], preds: Pred[]) => boolean;

const md = (text: string) => `metadata=${encodeURIComponent(text)}`;
const boxArea = (a: { bbox: number[] }) => a.bbox[2]! * a.bbox[3]!;
const ratio = (a: { bbox: number[] }) => a.bbox[2]! / a.bbox[3]!;
const cat = (name: string) => file.categories.find((c) => c.name === name)!.id;

const CASES: [string, Record<string, unknown>, Keep][] = [
  ['file_name_contains_ignore_case=JPG', { fileNameContainsIgnoreCase: 'JPG' }, (i) => i.file_name.toLowerCase().includes('jpg')],
  ['file_name_contains=JPG', { fileNameContains: 'JPG' }, (i) => i.file_name.includes('JPG')],
  ['file_name_glob=*.jpg', { fileNameGlob: '*.jpg' }, (i) => i.file_name.endsWith('.jpg')],
  [`file_name_glob=${encodeURIComponent('?_[Nn]ight*')}`, { fileNameGlob: '?_[Nn]ight*' }, (i) => /^._[Nn]ight/.test(i.file_name)],
  ['min_width=130&max_width=150', { minWidth: 130, maxWidth: 150 }, (i) => i.width !== undefined && i.width >= 130 && i.width <= 150],
  ['min_height=100', { minHeight: 100 }, (i) => i.height !== undefined && i.height >= 100],
  ['max_height=70', { maxHeight: 70 }, (i) => i.height !== undefined && i.height <= 70],
  ['min_pixels=10000&max_pixels=15000', { minPixels: 10000, maxPixels: 15000 }, (i) => i.width !== undefined && i.width * i.height! >= 10000 && i.width * i.height! <= 15000],
  ['min_area=100&max_area=300', { minArea: 100, maxArea: 300 }, (_i, a) => a.some((x) => x.area >= 100 && x.area <= 300)],
  ['min_aspect_ratio=2', { minAspectRatio: 2 }, (_i, a) => a.some((x) => ratio(x) >= 2)],
  ['max_aspect_ratio=0.5&category=person', { maxAspectRatio: 0.5, category: 'person' }, (_i, a) => a.some((x) => ratio(x) <= 0.5 && x.category_id === cat('person'))],
  ['is_crowd=true&category=cart', { isCrowd: true, category: 'cart' }, (_i, a) => a.some((x) => x.iscrowd === 1 && x.category_id === cat('cart'))],
  ['category=shelf&min_bbox_area=300', { category: 'shelf', minBboxArea: 300 }, (_i, a) => a.some((x) => x.category_id === cat('shelf') && boxArea(x) >= 300)],
  ['predictions=model', { predictions: 'model' }, (_i, _a, p) => p.length > 0],
  ['predictions=model&min_confidence=0.8', { predictions: 'model', minConfidence: 0.8 }, (_i, _a, p) => p.some((x) => x.score >= 0.8)],
  ['predictions=model&category=cart&max_confidence=0.3', { predictions: 'model', category: 'cart', maxConfidence: 0.3 }, (_i, _a, p) => p.some((x) => x.category_id === cat('cart') && x.score <= 0.3)],
  ['predictions=model&min_bbox_area=200', { predictions: 'model', minBboxArea: 200 }, (_i, _a, p) => p.some((x) => boxArea(x) >= 200)],
  [md('camera.iso gte 200'), { metadata: [{ path: 'camera.iso', op: 'GTE', value: 200 }] }, (i) => (i.camera?.iso ?? -1) >= 200],
  [md('$.camera.model eq "X"'), { metadata: [{ path: '$.camera.model', op: 'EQ', value: 'X' }] }, (i) => i.camera?.model === 'X'],
  [md('$.camera.iso eq "100"'), { metadata: [{ path: '$.camera.iso', op: 'EQ', value: '100' }] }, () => false],
  [md('$.camera.iso in [100,400]'), { metadata: [{ path: '$.camera.iso', op: 'IN', values: [100, 400] }] }, (i) => i.camera?.iso === 100 || i.camera?.iso === 400],
  [md('$.tags[0] eq "indoor"'), { metadata: [{ path: '$.tags[0]', op: 'EQ', value: 'indoor' }] }, (i) => i.tags?.[0] === 'indoor'],
  [md('$.tags[1] exists'), { metadata: [{ path: '$.tags[1]', op: 'EXISTS' }] }, (i) => i.tags?.[1] !== undefined],
  [md('$.camera exists false'), { metadata: [{ path: '$.camera', op: 'EXISTS', value: false }] }, (i) => i.camera === undefined],
  [md('$.night eq true'), { metadata: [{ path: '$.night', op: 'EQ', value: true }] }, (i) => i.night === true],
  [md('$.night ne true'), { metadata: [{ path: '$.night', op: 'NE', value: true }] }, (i) => i.night !== true],
  [`${md('$.camera.iso lt 400')}&${md('$.camera.model ne "X"')}&min_width=1`, { metadata: [{ path: '$.camera.iso', op: 'LT', value: 400 }, { path: '$.camera.model', op: 'NE', value: 'X' }], minWidth: 1 },
    (i) => i.camera !== undefined && i.camera.iso < 400 && i.camera.model !== 'X' && i.width !== undefined],
];

describe('the extended filter over REST and GraphQL (shop fixture)', () => {
  const expected = (keep: Keep) =>
    file.images.filter((img) => keep(img, file.annotations.filter((a) => a.image_id === img.id), file.results.filter((r) => r.image_id === img.id))).map((i) => i.id);

  it.each(CASES)('%s', async (query, filter, keep) => {
    const want = expected(keep);
    expect(await restIds(shop, query)).toEqual(want);
    expect(await graphIds(shop, filter)).toEqual(want);
  });

  it('the cases select something and leave something out (or they would prove little)', () => {
    const sizes = CASES.filter(([q]) => !q.includes('iso%20eq%20%22100')).map(([, , keep]) => expected(keep).length);
    for (const n of sizes) expect(n).toBeGreaterThan(0);
    for (const n of sizes) expect(n).toBeLessThan(file.images.length);
  });

  it('annotation conditions hold on one annotation together, not on different annotations each', async () => {
    const oneMeetsAll: Keep = (_i, a) => a.some((x) => x.category_id === cat('person') && boxArea(x) <= 40);
    const eachMet: Keep = (_i, a) => a.some((x) => x.category_id === cat('person')) && a.some((x) => boxArea(x) <= 40);
    // The fixture tells the two apart.
    expect(expected(eachMet)).not.toEqual(expected(oneMeetsAll));
    expect(await restIds(shop, 'category=person&max_bbox_area=40')).toEqual(expected(oneMeetsAll));
  });

  it('a category filter tests the ground truth, not the predictions of a run', async () => {
    // Image 0, 3, … have no prediction; every cart prediction on an image without a ground-truth cart is a false positive.
    const gtCart = expected((_i, a) => a.some((x) => x.category_id === cat('cart')));
    const predCart = expected((_i, _a, p) => p.some((x) => x.category_id === cat('cart')));
    expect(predCart).not.toEqual(gtCart);
    expect(await graphIds(shop, { category: 'cart' })).toEqual(gtCart);
    expect(await graphIds(shop, { category: 'cart', predictions: 'model' })).toEqual(predCart);
  });
});

describe('metadata a plugin wrote (the example plugin on the demo dataset)', () => {
  it.each<[string, Record<string, unknown>, (w: number, hgt: number) => boolean]>([
    [md('$.orientation eq "portrait"'), { metadata: [{ path: 'orientation', op: 'EQ', value: 'portrait' }] }, (w, hgt) => w / hgt < 0.95],
    [md('aspect_ratio gt 1.3'), { metadata: [{ path: 'aspect_ratio', op: 'GT', value: 1.3 }] }, (w, hgt) => Math.round((w / hgt) * 1000) / 1000 > 1.3],
    [md('$.orientation in ["square","portrait"]'), { metadata: [{ path: '$.orientation', op: 'IN', values: ['square', 'portrait'] }] }, (w, hgt) => w / hgt <= 1.05],
  ])('%s', async (query, filter, keep) => {
    const coco = await readCoco();
    const want = coco.images.filter((i) => keep(i.width, i.height)).map((i) => i.id);
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(coco.images.length);
    expect(await restIds(demo, query)).toEqual(want);
    expect(await graphIds(demo, filter)).toEqual(want);
  });
});

describe('bad filters', () => {
  it.each([
    [md('$..camera eq 1'), /query parameter "metadata"\[0\]\.path: "\$\.\.camera" is not a metadata path/],
    [md('$.camera;drop eq 1'), /is not a metadata path: at ";drop"/],
    [md('$[x] eq 1'), /is not a metadata path/],
    [md('$ exists'), /name a member of the metadata/],
    [md('$.camera like "X"'), /\.op: "like" is not an operator; use one of eq, ne, lt, lte, gt, gte, in, exists/],
    [md('$.camera.iso in 3'), /in takes values, a list of 1 to 100/],
    [md('$.night lt true'), /lt compares numbers or strings; a boolean takes eq or ne/],
    [md('$.night eq'), /eq needs a value/],
    [md('$.camera.model eq X'), /"X" is not a JSON value; quote strings/],
    [md('$.camera.model eq null'), /\.value: eq needs a value/],
    [`${md('$.night exists')}&${md('$.camera.model eq X')}`, /query parameter "metadata"\[1\]: "X" is not a JSON value/],
    [md('camera'), /is not a condition; write <path> <op> \[<JSON value>\]/],
    ['min_confidence=0.5', /query parameter "min_confidence" needs query parameter "predictions"/],
    ['min_width=-1', /"min_width" must be at least 0/],
    ['max_pixels=1.5', /"max_pixels" must be an integer/],
    ['min_aspect_ratio=wide', /"min_aspect_ratio" must be a number/],
    ['file_name_glob=', /"file_name_glob" must not be empty/],
  ])('REST %s is a 400 naming the problem', async (query, message) => {
    const res = await fetch(`${h.base}/samples?dataset_id=${shop}&${query}`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(400);
    expect(body.error.code).toBe('BAD_USER_INPUT');
    expect(body.error.message).toMatch(message);
  });

  it('an unknown prediction run is NOT_FOUND over both', async () => {
    const res = await fetch(`${h.base}/samples?dataset_id=${shop}&predictions=nope`);
    expect(res.status).toBe(404);
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(filter: { predictions: "nope" }) { totalCount } } }`, { id: shop });
    expect(codes(r)).toEqual(['NOT_FOUND']);
  });

  it.each<[Record<string, unknown>, RegExp]>([
    [{ metadata: [{ path: '$.a..b', op: 'EQ', value: 1 }] }, /filter\.metadata\[0\]\.path: "\$\.a\.\.b" is not a metadata path/],
    [{ metadata: [{ path: '$.a', op: 'EQ', value: { nested: 1 } }] }, /filter\.metadata\[0\]\.value: \{"nested":1\} is not a value to compare/],
    [{ metadata: [{ path: '$.a', op: 'IN', value: 1 }] }, /filter\.metadata\[0\]: in takes values/],
    [{ maxConfidence: 0.5 }, /filter\.maxConfidence needs filter\.predictions/],
    [{ minPixels: -3 }, /filter\.minPixels must be an integer between 0/],
  ])('GraphQL %o is BAD_USER_INPUT naming the field', async (filter, message) => {
    const r = await h.gql(`query($id: ID!, $f: SampleFilter) { dataset(id: $id) { samples(filter: $f) { totalCount } } }`, { id: shop, f: filter });
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toMatch(message);
  });

  it('a metadata path never reaches SQL as text: quotes and semicolons are refused by the grammar, not escaped', async () => {
    const res = await fetch(`${h.base}/samples?dataset_id=${shop}&${md(`$.a') OR 1=1 -- eq 1`)}`);
    expect(res.status).toBe(400);
  });
});
