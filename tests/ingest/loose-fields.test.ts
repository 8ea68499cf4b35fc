import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent } from '../../dist/services/ingest/ingest.js';
import { DEMO, ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Fields that only inform (license, sizes, dates, urls, supercategory, info, the licenses
 * section, area, iscrowd, score, num_keypoints) are written loosely by real exporters: a file
 * that has them in another type still ingests, the value is kept as found, and the rows
 * concerned are counted in a warning (docs/ingestion.md, "Field by field").
 */

interface Coco {
  info?: unknown;
  licenses?: unknown;
  images: Record<string, unknown>[];
  annotations: Record<string, unknown>[];
  categories: Record<string, unknown>[];
}

const ORACLE = JSON.parse(fs.readFileSync(DEMO.annotations, 'utf8')) as Coco;

let env: TestEnv;

function variant(name: string, change: (c: Coco) => void): string {
  const c = structuredClone(ORACLE);
  change(c);
  const p = path.join(env.dir, `${name}.json`);
  fs.writeFileSync(p, JSON.stringify(c));
  return p;
}

async function ingestOk(annotationPath: string): Promise<IngestEvent> {
  const last = (await ingestAll(env.dv, { annotationPath, imageDir: DEMO.images })).at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return last;
}

const warning = (e: IngestEvent, code: string) => e.warnings!.find((w) => w.code === code);
const image = (i: number) => ORACLE.images[i]!;
const annotation = (i: number) => ORACLE.annotations[i]!;

beforeAll(async () => {
  env = await openTestEnv();
});

afterAll(async () => {
  await env?.close();
});

describe('images', () => {
  it('a license given as text (TACO\'s "CC") keeps its text in metadata; an id stays license_id', async () => {
    const done = await ingestOk(
      variant('taco-license', (c) => {
        c.images[101]!.license = 'CC';
        c.images[102]!.license = null;
      }),
    );
    const id = done.dataset_id!;
    const taco = await env.dv.samples.get(id, image(101).id as number);
    expect([taco.licenseId, taco.metadata]).toEqual([null, { license: 'CC' }]);
    const none = await env.dv.samples.get(id, image(102).id as number);
    expect([none.licenseId, none.metadata]).toEqual([null, null]);
    const numeric = await env.dv.samples.get(id, image(0).id as number);
    expect([numeric.licenseId, numeric.metadata]).toEqual([image(0).license, null]);
    expect(warning(done, 'license_not_an_id')).toMatchObject({ count: 1, examples: [image(101).file_name] });
    expect((await env.dv.datasets.get(id)).warnings).toEqual(done.warnings);
  });

  it('sizes given as text are read as numbers; a size that is not a positive integer is kept in metadata', async () => {
    const done = await ingestOk(
      variant('sizes', (c) => {
        c.images[0]!.width = String(c.images[0]!.width);
        c.images[1]!.height = String(c.images[1]!.height);
        c.images[2]!.width = -5;
        c.images[3]!.height = 12.5;
        c.images[4]!.width = 'wide';
      }),
    );
    const id = done.dataset_id!;
    const s = await Promise.all([0, 1, 2, 3, 4].map((i) => env.dv.samples.get(id, image(i).id as number)));
    expect(s.map((x) => [x.width, x.height, x.metadata])).toEqual([
      [image(0).width, image(0).height, null],
      [image(1).width, image(1).height, null],
      [null, image(2).height, { width: -5 }],
      [image(3).width, null, { height: 12.5 }],
      [null, image(4).height, { width: 'wide' }],
    ]);
    expect(warning(done, 'image_size_as_text')).toMatchObject({ count: 2, examples: [image(0).file_name, image(1).file_name] });
    expect(warning(done, 'invalid_image_size')).toMatchObject({ count: 3, examples: [2, 3, 4].map((i) => image(i).file_name) });
    // Their size is not missing from the file: they are not counted twice.
    expect(warning(done, 'images_without_size')).toBeUndefined();
  });

  it('dates and urls of any type are kept as their text', async () => {
    const done = await ingestOk(
      variant('text-fields', (c) => {
        Object.assign(c.images[0]!, { date_captured: 2014, coco_url: 42, flickr_url: false });
        Object.assign(c.images[1]!, { date_captured: { y: 2014, m: 5 }, coco_url: null });
      }),
    );
    const [a, b] = await Promise.all([0, 1].map((i) => env.dv.samples.get(done.dataset_id!, image(i).id as number)));
    expect([a!.dateCaptured, a!.cocoUrl, a!.flickrUrl]).toEqual(['2014', '42', 'false']);
    expect([b!.dateCaptured, b!.cocoUrl]).toEqual(['{"y":2014,"m":5}', null]);
    expect(done.warnings!.map((w) => w.code)).not.toContain('license_not_an_id');
  });
});

describe('annotations', () => {
  it('iscrowd, area, score and num_keypoints of another type are kept in extra, and counted', async () => {
    const done = await ingestOk(
      variant('annotation-fields', (c) => {
        c.annotations[0]!.iscrowd = '1';
        c.annotations[1]!.iscrowd = 2;
        c.annotations[2]!.iscrowd = true;
        c.annotations[3]!.area = '12.5';
        c.annotations[4]!.score = 'high';
        c.annotations[5]!.num_keypoints = 3_000_000_000;
      }),
    );
    const id = done.dataset_id!;
    const rows = (await env.dv.db.query(
      `SELECT ord, is_crowd, area, score, num_keypoints, extra FROM annotations WHERE dataset_id = $1 AND ord < 6 ORDER BY ord`,
      [id],
    )).map((r) => [r.ord, r.is_crowd, r.area, r.score, r.num_keypoints, r.extra === null ? null : JSON.parse(r.extra as string)]);
    expect(rows).toEqual([
      [0, false, annotation(0).area, null, null, { iscrowd: '1' }],
      [1, false, annotation(1).area, null, null, { iscrowd: 2 }],
      [2, true, annotation(2).area, null, null, null],
      [3, false, null, null, null, { area: '12.5' }],
      [4, false, annotation(4).area, null, null, { score: 'high' }],
      [5, false, annotation(5).area, null, null, { num_keypoints: 3_000_000_000 }],
    ]);
    expect(warning(done, 'annotation_values_kept_in_extra')).toMatchObject({ count: 5, examples: [0, 1, 3, 4, 5].map((i) => annotation(i).id) });
  });

  it('NaN and Infinity in informational fields are null, counted as non-standard numbers, not as another type', async () => {
    const p = variant('nan-fields', (c) => {
      Object.assign(c.images[0]!, { license: '__NaN__', width: '__Infinity__', date_captured: '__NaN__' });
      Object.assign(c.annotations[0]!, { iscrowd: '__NaN__', score: '__-Infinity__', num_keypoints: '__NaN__' });
    });
    fs.writeFileSync(p, fs.readFileSync(p, 'utf8').replace(/"__(NaN|-?Infinity)__"/g, '$1'));
    const done = await ingestOk(p);
    const s = await env.dv.samples.get(done.dataset_id!, image(0).id as number);
    expect([s.licenseId, s.width, s.dateCaptured, s.metadata]).toEqual([null, null, null, null]);
    const [a] = await env.dv.db.query(`SELECT is_crowd, score, num_keypoints, extra FROM annotations WHERE dataset_id = $1 AND ord = 0`, [done.dataset_id!]);
    expect(a).toEqual({ is_crowd: false, score: null, num_keypoints: null, extra: null });
    const own = ['unused_categories', 'images_without_annotations']; // coco128's own
    expect(done.warnings!.filter((w) => !own.includes(w.code)).map((w) => [w.code, w.count])).toEqual([['images_without_size', 1], ['non_standard_numbers', 6]]);
  });
});

describe('categories, licenses and info', () => {
  it('a supercategory or a name of another type is kept as its text', async () => {
    const done = await ingestOk(
      variant('categories', (c) => {
        c.categories[0]!.supercategory = 5;
        c.categories[1]!.supercategory = { group: 'vehicles' };
        c.categories[2]!.supercategory = null;
        c.categories[3]!.name = 7;
      }),
    );
    const cats = await env.dv.datasets.categories(done.dataset_id!);
    expect(cats.slice(0, 4).map((c) => [c.supercategory, c.name])).toEqual([
      ['5', ORACLE.categories[0]!.name],
      ['{"group":"vehicles"}', ORACLE.categories[1]!.name],
      [null, ORACLE.categories[2]!.name],
      [ORACLE.categories[3]!.supercategory, '7'],
    ]);
  });

  it('"licenses" entries without an integer id are not stored, and counted; "licenses": null is none', async () => {
    const done = await ingestOk(
      variant('license-entries', (c) => {
        c.licenses = [{ id: 1, name: 'CC BY', url: 42 }, { id: 'cc0', name: 'CC0' }, 'Public Domain', { name: 'no id' }];
      }),
    );
    const stored = await env.dv.db.query(`SELECT license_id, name, url FROM licenses WHERE dataset_id = $1`, [done.dataset_id!]);
    expect(stored.map((r) => [r.license_id, r.name, r.url])).toEqual([[1, 'CC BY', '42']]);
    expect(warning(done, 'licenses_not_stored')).toMatchObject({ count: 3, examples: ['CC0', 'Public Domain', 'no id'] });

    const none = await ingestOk(variant('licenses-null', (c) => (c.licenses = null)));
    expect(none.warnings!.map((w) => w.code)).not.toContain('licenses_not_stored');
  });

  it('an "info" that is not an object is kept under "value"', async () => {
    for (const info of ['COCO 2017, first 128 images', ['a', 1], 2017]) {
      const done = await ingestOk(variant(`info-${typeof info}`, (c) => (c.info = info)));
      expect((await env.dv.datasets.get(done.dataset_id!)).info).toEqual({ value: info });
    }
  });
});
