import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_IMAGES, DEMO_JSON, getJson, ingestOk, parseSse, SLOW, startTestServer, type TestServer } from '../rest/helpers.js';
import { readJson } from '../helpers/fixtures.js';

/**
 * The object view over REST on the demo dataset: rows, paging, sorts, filters and crops, checked
 * against the demo's COCO file read here (the oracle), and crops against sharp run on the original.
 */

interface CocoAnn { id: number; image_id: number; category_id: number; bbox: [number, number, number, number]; area: number; iscrowd: number }
interface Coco { images: { id: number; file_name: string; width: number; height: number }[]; annotations: CocoAnn[]; categories: { id: number; name: string }[] }
interface Item {
  position: number; annotation_id: number; category_name: string | null; bbox: { x: number; y: number; w: number; h: number } | null;
  area: number | null; is_crowd: boolean; confidence: number | null; label_set: string; crop_url: string; cursor: string;
  sample: { id: number; file_name: string; thumbnail_url: string };
}
interface Page { items: Item[]; page_info: { has_next_page: boolean; has_previous_page: boolean; start_cursor: string | null; end_cursor: string | null }; total?: number }

let s: TestServer;
let id: string;
let coco: Coco;
/** Every ground-truth annotation with its file position (its ord) and its image's position. */
let anns: (CocoAnn & { ord: number; imageOrd: number; category: string })[];

beforeAll(async () => {
  s = await startTestServer();
  id = (await ingestOk(s.base, { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES })).dataset_id!;
  coco = readJson<Coco>(DEMO_JSON);
  const imageOrd = new Map(coco.images.map((im, i) => [im.id, i]));
  const names = new Map(coco.categories.map((c) => [c.id, c.name]));
  anns = coco.annotations.map((a, ord) => ({ ...a, ord, imageOrd: imageOrd.get(a.image_id)!, category: names.get(a.category_id)! }));
}, SLOW);
afterAll(() => s?.close());

const url = (query: string) => `${s.base}/datasets/${id}/objects?${query}`;
const page = async (query: string) => {
  const r = await getJson<Page>(url(query));
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};

/** Every item, paging forward (or backward from the end) `n` at a time. */
async function all(query: string, n: number, backward = false): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | null = null;
  for (;;) {
    const p: Page = await page(`${query}&${backward ? 'last' : 'first'}=${n}${cursor ? `&${backward ? 'before' : 'after'}=${cursor}` : ''}`);
    if (backward) items.unshift(...p.items);
    else items.push(...p.items);
    const more = backward ? p.page_info.has_previous_page : p.page_info.has_next_page;
    if (!more) return items;
    cursor = backward ? p.page_info.start_cursor : p.page_info.end_cursor;
  }
}

const fileOrder = (a: { imageOrd: number; ord: number }, b: { imageOrd: number; ord: number }) => a.imageOrd - b.imageOrd || a.ord - b.ord;

describe('GET /datasets/{id}/objects', () => {
  it('lists every box of a category, in file order, forward and backward alike, with its sample and total', async () => {
    const expected = anns.filter((a) => a.category === 'circle').sort(fileOrder);
    expect(expected.length).toBeGreaterThan(40);
    const forward = await all('object_category=circle', 17);
    expect(forward.map((o) => o.position)).toEqual(expected.map((a) => a.ord));
    expect(forward.map((o) => [o.annotation_id, o.bbox && [o.bbox.x, o.bbox.y, o.bbox.w, o.bbox.h], o.area, o.sample.id])).toEqual(
      expected.map((a) => [a.id, a.bbox, a.area, a.image_id]),
    );
    const fileNames = new Map(coco.images.map((im) => [im.id, im.file_name]));
    expect(forward.every((o) => o.sample.file_name === fileNames.get(o.sample.id) && o.label_set === 'ground_truth' && o.category_name === 'circle')).toBe(true);
    const backward = await all('object_category=circle', 23, true);
    expect(backward.map((o) => o.position)).toEqual(expected.map((a) => a.ord));
    expect((await page('object_category=circle&first=1&total=true')).total).toBe(expected.length);
  });

  it('sorts by area both ways (ties on position) and combines object conditions with the sample filter', async () => {
    const square = anns.filter((a) => a.category === 'square');
    const asc = [...square].sort((a, b) => a.area - b.area || a.ord - b.ord).map((a) => a.ord);
    expect((await all('object_category=square&sort=area', 40)).map((o) => o.position)).toEqual(asc);
    expect((await all('object_category=square&sort=area&direction=desc', 40, true)).map((o) => o.position)).toEqual([...asc].reverse());

    const areas = anns.map((a) => a.area).sort((a, b) => a - b);
    const [lo, hi] = [areas[Math.floor(areas.length / 4)]!, areas[Math.floor(areas.length / 2)]!];
    // Samples holding a star, and in them the objects of any category within the area range.
    const withStar = new Set(anns.filter((a) => a.category === 'star').map((a) => a.image_id));
    const expected = anns.filter((a) => withStar.has(a.image_id) && a.area >= lo && a.area <= hi).sort(fileOrder).map((a) => a.ord);
    expect(expected.length).toBeGreaterThan(5);
    expect((await all(`category=star&object_min_area=${lo}&object_max_area=${hi}`, 50)).map((o) => o.position)).toEqual(expected);
    const crowd = anns.filter((a) => a.iscrowd === 1).sort(fileOrder).map((a) => a.ord);
    expect(crowd.length).toBeGreaterThan(0);
    expect((await all('object_is_crowd=true', 50)).map((o) => o.position)).toEqual(crowd);
  });

  it('answers 400 naming the problem for bad input, 404 for an unknown dataset or run', async () => {
    const bad = async (query: string, pattern: RegExp) => {
      const r = await getJson(url(query));
      expect(r.status, query).toBe(400);
      expect(r.body.error.code).toBe('BAD_USER_INPUT');
      expect(r.body.error.message).toMatch(pattern);
    };
    await bad('object_categry=circle', /unknown parameter "object_categry"/);
    await bad('object_min_area=big', /object_min_area.*number/);
    await bad('sort=size', /sort.*one of file, area, confidence, iou/);
    await bad('sort=iou', /iou needs an evaluation/);
    await bad('first=500', /first.*at most 200/);
    await bad('first=5&before=abc', /before/);
    await bad('after=bm90IGEgY3Vyc29y', /not a cursor/);
    await bad('object_outcome=fp', /object_evaluation/);
    await bad('object_evaluation=aaaaaaaaaaaaaaaa&object_outcome=great', /"great" is not one of/);
    // A cursor of another sort.
    const p = await page('first=2');
    await bad(`sort=area&after=${p.page_info.end_cursor}`, /different filter or sort/);
    expect((await getJson(`${s.base}/datasets/aaaaaaaaaaaaaaaa/objects`)).status).toBe(404);
    expect((await getJson(url('object_label_set=nope'))).status).toBe(404);
    expect((await getJson(url('object_evaluation=aaaaaaaaaaaaaaaa'))).status).toBe(404);
  });
});

/** The pixels a crop covers, computed here from the box and the image size. */
function region(b: [number, number, number, number], pad: number, width: number, height: number) {
  const [x, y, w, h] = b;
  const left = Math.max(0, Math.floor(x - pad * w));
  const top = Math.max(0, Math.floor(y - pad * h));
  return { left, top, width: Math.min(width, Math.ceil(x + w + pad * w)) - left, height: Math.min(height, Math.ceil(y + h + pad * h)) - top };
}

/** Mean absolute difference of two images' RGB pixels (same size). */
async function meanDiff(a: Buffer, b: Buffer): Promise<number> {
  const [ra, rb] = await Promise.all([a, b].map((x) => sharp(x).removeAlpha().raw().toBuffer()));
  expect(ra!.length).toBe(rb!.length);
  let sum = 0;
  for (let i = 0; i < ra!.length; i++) sum += Math.abs(ra![i]! - rb![i]!);
  return sum / ra!.length;
}

describe('crops', () => {
  it('crop_url serves the padded box of the original as WebP, cached: memory hit, 304, immutable at the current revision', async () => {
    const [item] = (await page('object_category=hexagon&first=1')).items;
    const ann = anns.find((a) => a.ord === item!.position)!;
    const image = coco.images.find((im) => im.id === ann.image_id)!;
    const res = await fetch(item!.crop_url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('cache-control')).toMatch(/immutable/);
    const body = Buffer.from(await res.arrayBuffer());
    const r = region(ann.bbox, 0.1, image.width, image.height);
    const scale = 256 / Math.max(r.width, r.height);
    const meta = await sharp(body).metadata();
    expect(meta.format).toBe('webp');
    expect([meta.width, meta.height]).toEqual([Math.round(r.width * scale), Math.round(r.height * scale)]);
    const direct = await sharp(path.join(DEMO_IMAGES, image.file_name)).extract(r).resize({ width: 256, height: 256, fit: 'inside' }).png().toBuffer();
    expect(await meanDiff(body, direct)).toBeLessThan(3);

    const generated = s.dv.thumbnails.stats.generated;
    const again = await fetch(item!.crop_url);
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).toBe(true);
    expect(s.dv.thumbnails.stats.generated).toBe(generated);
    const etag = res.headers.get('etag')!;
    const notModified = await fetch(item!.crop_url, { headers: { 'if-none-match': etag } });
    expect(notModified.status).toBe(304);

    // Another size and padding are other crops; the explicit-box form with the same box is the same pixels.
    const small = await fetch(item!.crop_url.replace('size=medium', 'size=small').concat('&pad=0'));
    const smallMeta = await sharp(Buffer.from(await small.arrayBuffer())).metadata();
    const r0 = region(ann.bbox, 0, image.width, image.height);
    expect(Math.max(smallMeta.width!, smallMeta.height!)).toBe(128);
    expect(smallMeta.width! / smallMeta.height!).toBeCloseTo(r0.width / r0.height, 1);
    const byBox = await fetch(`${s.base}/images/${id}/${ann.image_id}/crop?box=${ann.bbox.join(',')}`);
    expect(byBox.status).toBe(200);
    expect(byBox.headers.get('cache-control')).toMatch(/immutable/);
    expect(await meanDiff(Buffer.from(await byBox.arrayBuffer()), body)).toBe(0);
  });

  it('refuses bad boxes, sizes and paddings with 400, unknown objects with 404', async () => {
    const image = coco.images[0]!;
    const bad = async (u: string, pattern: RegExp) => {
      const r = await getJson(`${s.base}${u}`);
      expect(r.status, u).toBe(400);
      expect(r.body.error.message).toMatch(pattern);
    };
    await bad(`/images/${id}/${image.id}/crop?box=${image.width + 10},0,20,20`, /lies outside its \d+×\d+ image/);
    await bad(`/images/${id}/${image.id}/crop?box=10,10,0,20`, /no area/);
    await bad(`/images/${id}/${image.id}/crop?box=NaN,10,5,20`, /box.*x,y,w,h/);
    await bad(`/images/${id}/${image.id}/crop?box=1,2,3`, /box.*x,y,w,h/);
    // The first annotation (position 0) is on the sample of the file's first annotation.
    const owner = anns[0]!.image_id;
    await bad(`/images/${id}/${owner}/objects/0?size=original`, /size.*small, medium, large/);
    await bad(`/images/${id}/${owner}/objects/0?pad=9`, /pad.*at most 2/);
    expect((await getJson(`${s.base}/images/${id}/${owner}/objects/99999999`)).status).toBe(404);
    expect((await getJson(`${s.base}/images/${id}/${owner}/objects/x1`)).status).toBe(404);
    // An annotation addressed under another sample than its own is no address.
    const other = coco.images.find((im) => im.id !== owner)!.id;
    expect((await getJson(`${s.base}/images/${id}/${other}/objects/0`)).status).toBe(404);
    expect((await fetch(`${s.base}/images/${id}/${owner}/objects/0`)).status).toBe(200);
    expect((await getJson(`${s.base}/images/${id}/99999999/crop?box=1,1,5,5`)).status).toBe(404);
  });
});

describe('a change of the dataset', () => {
  it('bumps the revision: old cursors are refused, old crop URLs lose their immutability', async () => {
    const before = await page('object_category=circle&first=3');
    const cropUrl = before.items[0]!.crop_url;
    // A prediction run: a COCO results file made here from three ground-truth boxes.
    const results = anns.slice(0, 3).map((a) => ({ image_id: a.image_id, category_id: a.category_id, bbox: a.bbox, score: 0.5 }));
    const file = path.join(s.data, 'results.json');
    await fs.writeFile(file, JSON.stringify(results));
    const res = await fetch(`${s.base}/datasets/${id}/predictions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ results_path: file, name: 'copy' }),
    });
    expect(parseSse(await res.text()).at(-1)).toMatchObject({ stage: 'complete' });
    const r = await getJson(url(`object_category=circle&first=3&after=${before.page_info.end_cursor}`));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/has changed since the cursor was made/);
    const stale = await fetch(cropUrl);
    expect(stale.status).toBe(200);
    expect(stale.headers.get('cache-control')).toMatch(/no-cache/);
    // The run's objects, by label set, with their scores.
    const run = await page('object_label_set=copy&sort=confidence');
    expect(run.items.map((o) => [o.bbox && [o.bbox.x, o.bbox.y, o.bbox.w, o.bbox.h], o.confidence, o.label_set])).toEqual(results.map((p) => [p.bbox, 0.5, 'copy']));
  });
});

describe('with DATAVISOR_API_TOKEN', () => {
  it('crop URLs carry their own signature: they work without the token, for that object only', async () => {
    const secured = await startTestServer({ env: { DATAVISOR_API_TOKEN: 'objects-secret' } });
    try {
      const auth = { authorization: 'Bearer objects-secret' };
      const done = await fetch(`${secured.base}/datasets/ingest`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES }),
      });
      const dataset = parseSse(await done.text()).at(-1)!.dataset_id!;
      expect((await fetch(`${secured.base}/datasets/${dataset}/objects`)).status).toBe(401);
      const listed = (await getJson<Page>(`${secured.base}/datasets/${dataset}/objects?first=2`, { headers: auth })).body;
      const [a, b] = listed.items;
      expect(a!.crop_url).toMatch(/&sig=/);
      expect((await fetch(a!.crop_url)).status).toBe(200);
      // Another object under the first one's signature.
      expect((await fetch(a!.crop_url.replace(`/objects/${a!.position}?`, `/objects/${b!.position}?`))).status).toBe(403);
      expect((await fetch(a!.crop_url.replace(/&exp=.*/, ''))).status).toBe(401);
      // A thumbnail signature does not open a crop.
      expect((await fetch(`${secured.base}/images/${dataset}/${a!.sample.id}/objects/${a!.position}?size=medium&${new URL(a!.sample.thumbnail_url).search.slice(1).replace('size=medium&', '')}`)).status).toBe(403);
    } finally {
      await secured.close();
    }
  }, SLOW);
});
