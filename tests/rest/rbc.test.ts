import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getJson, ingestOk, RBC, SLOW, startTestServer, type IngestEventJson, type TestServer } from './helpers.js';

const SPLITS = [
  { split: 'train', images: 210, annotations: 4947 },
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
    const dir = path.join(RBC, split);
    const complete = await ingestOk(t.base, { annotation_path: path.join(dir, '_annotations.coco.json'), image_dir: dir, dataset_name: `rbc-${split}`, split });
    expect(complete).toMatchObject({ image_count: images, annotation_count: annotations, category_count: 3 });
    // Roboflow's unused placeholder category "RBC-WBC" is reported, not hidden.
    const warning = complete.warnings?.find((w) => w.code === 'unused_categories');
    expect(warning).toMatchObject({ count: 1 });
    done.set(split, complete);
  });

  test('the three datasets are listed newest first with their split', async () => {
    const list = await getJson(`${t.base}/datasets`);
    expect(list.body.datasets.map((d: any) => d.name)).toEqual(['rbc-test', 'rbc-valid', 'rbc-train']);
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
