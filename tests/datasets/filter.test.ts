import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startHarness, type Harness } from '../graphql/harness.js';

/**
 * One filter, two spellings: every GraphQL SampleFilter field is a REST query parameter, both
 * select the same samples, and REST refuses a parameter it does not know instead of ignoring it.
 */

interface Img { id: number; file_name: string; width: number; height: number }
interface Ann { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number }

/** 30 images; image i: i % 4 annotations, categories alternating, boxes growing with i; every 7th crowd. */
function cocoFile() {
  const images: Img[] = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, file_name: `${i % 2 ? 'night' : 'day'}_${i}.jpg`, width: 100, height: 80 }));
  const annotations: Ann[] = [];
  for (const img of images) {
    for (let k = 0; k < (img.id - 1) % 4; k++) {
      const n = annotations.length;
      const side = 2 + img.id + k;
      annotations.push({ id: n + 1, image_id: img.id, category_id: 1 + (n % 2), bbox: [0, 0, side, side], area: side * side, iscrowd: n % 7 === 0 ? 1 : 0 });
    }
  }
  return { images, annotations, categories: [{ id: 1, name: 'car' }, { id: 2, name: 'bike' }] };
}
const coco = cocoFile();

/** The expected sample ids, computed from the file with plain loops. */
function expectedIds(keep: (img: Img, anns: Ann[]) => boolean): number[] {
  return coco.images.filter((img) => keep(img, coco.annotations.filter((a) => a.image_id === img.id))).map((i) => i.id);
}
const catId = (name: string) => coco.categories.find((c) => c.name === name)!.id;

let h: Harness;
let id: string;

beforeAll(async () => {
  h = await startHarness();
  const folder = path.join(h.tmp, 'traffic');
  await fs.mkdir(folder);
  await fs.writeFile(path.join(folder, 'traffic.json'), JSON.stringify(coco));
  id = await h.ingest(path.join(folder, 'traffic.json'), folder, { datasetName: 'traffic', split: 'val' });
});
afterAll(() => h?.close());

async function restIds(query: string): Promise<number[]> {
  const res = await fetch(`${h.base}/samples?dataset_id=${id}&limit=200&${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: { id: number }[] }).items.map((s) => s.id);
}

async function graphIds(filter: Record<string, unknown>): Promise<number[]> {
  const r = await h.gql(`query($id: ID!, $f: SampleFilter) { dataset(id: $id) { samples(filter: $f, first: 200) { edges { node { sampleId } } } } }`, { id, f: filter });
  expect(r.errors).toBeUndefined();
  return r.data.dataset.samples.edges.map((e: { node: { sampleId: number } }) => e.node.sampleId);
}

const CASES: [string, Record<string, unknown>, (img: Img, anns: Ann[]) => boolean][] = [
  ['category=bike', { category: 'bike' }, (_i, a) => a.some((x) => x.category_id === catId('bike'))],
  ['categories=bike&categories=car', { categories: ['bike', 'car'] }, (_i, a) => a.length > 0],
  ['split=val', { split: 'val' }, () => true],
  ['split=train', { split: 'train' }, () => false],
  ['file_name_contains=night', { fileNameContains: 'night' }, (i) => i.file_name.includes('night')],
  ['min_annotations=2', { minAnnotations: 2 }, (_i, a) => a.length >= 2],
  ['max_annotations=1', { maxAnnotations: 1 }, (_i, a) => a.length <= 1],
  ['is_crowd=true', { isCrowd: true }, (_i, a) => a.some((x) => x.iscrowd === 1)],
  ['min_bbox_area=300', { minBboxArea: 300 }, (_i, a) => a.some((x) => x.bbox[2]! * x.bbox[3]! >= 300)],
  ['max_bbox_area=100', { maxBboxArea: 100 }, (_i, a) => a.some((x) => x.bbox[2]! * x.bbox[3]! <= 100)],
  ['file_missing=true', { fileMissing: true }, () => true], // the folder holds no image file
  ['category=car&min_bbox_area=200&file_name_contains=day', { category: 'car', minBboxArea: 200, fileNameContains: 'day' },
    (i, a) => i.file_name.includes('day') && a.some((x) => x.category_id === catId('car') && x.bbox[2]! * x.bbox[3]! >= 200)],
];

describe('the sample filter over REST and GraphQL', () => {
  it.each(CASES)('%s', async (query, filter, keep) => {
    const want = expectedIds(keep);
    expect(await restIds(query)).toEqual(want);
    expect(await graphIds(filter)).toEqual(want);
  });

  it('REST answers 400 naming a parameter it does not know', async () => {
    const res = await fetch(`${h.base}/samples?dataset_id=${id}&min_bbox_areaa=100000`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BAD_USER_INPUT');
    expect(body.error.message).toMatch(/unknown parameter "min_bbox_areaa"; the parameters are .*min_bbox_area/);
  });

  it.each([
    ['min_bbox_area=big', /"min_bbox_area" must be a number/],
    ['min_annotations=-1', /"min_annotations" must be at least 0/],
    ['is_crowd=maybe', /"is_crowd" must be true or false/],
    ['categories=', /"categories" /],
  ])('REST refuses %s', async (query, message) => {
    const res = await fetch(`${h.base}/samples?dataset_id=${id}&${query}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
  });

  it('GraphQL refuses a negative count with the field named', async () => {
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(filter: { minAnnotations: -1 }) { totalCount } } }`, { id });
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toMatch(/filter\.minAnnotations must be an integer between 0/);
  });
});
