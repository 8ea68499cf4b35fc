import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getJson, hasShared, ingestOk, RBC, RBC_TRAIN, SLOW, startTestServer, type IngestEventJson, type TestServer } from './helpers.js';

/** The splits in tests/fixtures; the train split is in ../shared only (the last describe). */
const SPLITS = [
  { split: 'valid', images: 20, annotations: 470 },
  { split: 'test', images: 10, annotations: 221 },
] as const;

let t: TestServer;
const done = new Map<string, IngestEventJson>();

beforeAll(async () => {
  t = await startTestServer();
}, SLOW);

afterAll(async () => {
  await t?.close();
});

describe('the Roboflow RBC export, one dataset per split', { timeout: SLOW }, () => {
  test.each(SPLITS)('ingesting $split gives $images images and $annotations annotations', async ({ split, images, annotations }) => {
    const complete = await ingestOk(t.base, { annotation_path: RBC(split).annotations, image_dir: RBC(split).images, dataset_name: `rbc-${split}`, split });
    expect(complete).toMatchObject({ image_count: images, annotation_count: annotations, category_count: 3 });
    // Roboflow's unused placeholder category "RBC-WBC" is reported, not hidden.
    const warning = complete.warnings?.find((w) => w.code === 'unused_categories');
    expect(warning).toMatchObject({ count: 1 });
    done.set(split, complete);
  });

  test('the datasets are listed newest first with their split', async () => {
    const list = await getJson(`${t.base}/datasets`);
    expect(list.body.datasets.map((d: any) => d.name)).toEqual(['rbc-test', 'rbc-valid']);
    for (const d of list.body.datasets) expect(d.split).toBe(d.name.slice(4));
    const cats = await getJson(`${t.base}/datasets/${done.get('valid')!.dataset_id}/categories`);
    expect(cats.body.categories.map((c: any) => [c.id, c.name, c.annotation_count > 0])).toEqual([
      [0, 'RBC-WBC', false],
      [1, 'rbc', true],
      [2, 'wbc', true],
    ]);
  });

  test('?split= keeps the samples of that split only', async () => {
    for (const { split, images } of SPLITS) {
      const id = done.get(split)!.dataset_id!;
      const same = await getJson(`${t.base}/samples?dataset_id=${id}&split=${split}&limit=200`);
      expect(same.status).toBe(200);
      expect(same.body.total).toBe(images);
      expect(same.body.items.every((s: any) => s.split === split)).toBe(true);
      const other = await getJson(`${t.base}/samples?dataset_id=${id}&split=${split === 'train' ? 'valid' : 'train'}`);
      expect(other.body).toMatchObject({ items: [], total: 0 });
    }
  });

  test('image id 0 is a sample like any other, with thumbnails and annotations', async () => {
    const id = done.get('test')!.dataset_id!;
    const ann = await getJson(`${t.base}/samples/0/annotations?dataset_id=${id}`);
    expect(ann.status).toBe(200);
    expect(ann.body.length).toBeGreaterThan(0);
    expect(new Set(ann.body.map((a: any) => a.category_name))).not.toContain('RBC-WBC');
    const thumb = await fetch(`${t.base}/images/${id}/0?size=small`);
    expect(thumb.status).toBe(200);
    expect((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width).toBe(128);
    const wbc = await getJson(`${t.base}/samples?dataset_id=${id}&category=wbc`);
    expect(wbc.body.total).toBeGreaterThan(0);
    expect(wbc.body.total).toBeLessThanOrEqual(10);
  });
});

describe.skipIf(!hasShared)('the RBC export\'s train split (../shared)', { timeout: SLOW }, () => {
  test('ingesting train gives 210 images and 4947 annotations, listed first, and ?split=train keeps them', async () => {
    const complete = await ingestOk(t.base, { annotation_path: RBC_TRAIN.annotations, image_dir: RBC_TRAIN.images, dataset_name: 'rbc-train', split: 'train' });
    expect(complete).toMatchObject({ image_count: 210, annotation_count: 4947, category_count: 3 });
    expect(complete.warnings?.find((w) => w.code === 'unused_categories')).toMatchObject({ count: 1 });
    const list = await getJson(`${t.base}/datasets`);
    expect(list.body.datasets.map((d: any) => d.name)).toEqual(['rbc-train', 'rbc-test', 'rbc-valid']);
    const same = await getJson(`${t.base}/samples?dataset_id=${complete.dataset_id}&split=train&limit=200`);
    expect(same.body.total).toBe(210);
    expect(same.body.items.every((s: any) => s.split === 'train')).toBe(true);
    const other = await getJson(`${t.base}/samples?dataset_id=${complete.dataset_id}&split=valid`);
    expect(other.body).toMatchObject({ items: [], total: 0 });
  });
});
