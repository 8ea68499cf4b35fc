import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import type { Annotation, Sample } from '../../dist/services/datasets/samples.js';
import { COCO128, DEMO, hasShared, ingestAll, openTestEnv, RBC, RBC_TRAIN, type TestEnv } from '../helpers/env.js';

/**
 * Real datasets, ingested as they are, every stored value checked against the JSON file itself
 * (parsed here with JSON.parse as the oracle): the RBC export's splits in tests/fixtures, and
 * where ../shared is present (tests/helpers/fixtures.ts) coco128 and the RBC train split. The
 * generated demo dataset goes through the same checks, for polygons and crowd RLE on every machine.
 */

interface CocoFile {
  info: Record<string, unknown>;
  licenses: { id: number; name: string; url: string }[];
  images: {
    id: number; file_name: string; width: number; height: number; license: number;
    coco_url?: string; flickr_url?: string; date_captured: string;
  }[];
  annotations: {
    id: number; image_id: number; category_id: number; bbox: [number, number, number, number]; area: number;
    iscrowd: 0 | 1; segmentation: number[][] | { counts: number[] | string; size: [number, number] };
  }[];
  categories: { id: number; name: string; supercategory: string }[];
}

const readCoco = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as CocoFile;
const SECTION_STAGE: Record<string, string> = { categories: 'categories', images: 'parsing_images', annotations: 'parsing_annotations' };

let env: TestEnv;

async function ingestOk(request: IngestRequest): Promise<{ events: IngestEvent[]; id: string }> {
  const events = await ingestAll(env.dv, request);
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return { events, id: last.dataset_id! };
}

async function allSamples(id: string): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let after: number | null = null; ;) {
    const page = await env.dv.samples.page(id, {}, { kind: 'after', afterOrd: after, limit: 200 });
    out.push(...page.samples);
    if (!page.hasMore) return out;
    after = page.samples.at(-1)!.ord;
  }
}

async function allAnnotations(id: string, sampleCount: number): Promise<Annotation[]> {
  const ords = Array.from({ length: sampleCount }, (_, i) => i);
  return (await env.dv.samples.annotationsOf(id, ords)).flat();
}

/** What the reader should make of a segmentation: kind, polygons, points. */
function segmentationOf(seg: CocoFile['annotations'][number]['segmentation']): [string, number, number] {
  if (!Array.isArray(seg)) return [typeof seg.counts === 'string' ? 'compressed_rle' : 'rle', 0, 0];
  const numbers = seg.reduce((n, p) => n + p.length, 0);
  return numbers === 0 ? ['none', 0, 0] : ['polygon', seg.length, Math.floor(numbers / 2)];
}

/** The warnings every well-formed file gets, computed from the oracle. */
function expectedWarnings(coco: CocoFile) {
  const usedCats = new Set(coco.annotations.map((a) => a.category_id));
  const unused = [...coco.categories].sort((a, b) => a.id - b.id).filter((c) => !usedCats.has(c.id));
  const annotated = new Set(coco.annotations.map((a) => a.image_id));
  const empty = coco.images.filter((i) => !annotated.has(i.id));
  const out: { code: string; count: number; examples: (string | number)[] }[] = [];
  if (unused.length) out.push({ code: 'unused_categories', count: unused.length, examples: unused.slice(0, 5).map((c) => c.name) });
  if (empty.length) out.push({ code: 'images_without_annotations', count: empty.length, examples: empty.slice(0, 5).map((i) => i.file_name) });
  return out;
}

/** Every stored sample, annotation and category equals the file's. */
async function expectStoredAsInFile(id: string, coco: CocoFile, split: string | null) {
  const samples = await allSamples(id);
  const perImage = new Map<number, number>();
  for (const a of coco.annotations) perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
  // Sample order is file order: ord 0..n-1 is the images array.
  expect(samples.map((s) => [s.ord, s.id, s.fileName, s.width, s.height, s.licenseId, s.cocoUrl, s.flickrUrl, s.dateCaptured])).toEqual(
    coco.images.map((i, ord) => [ord, i.id, i.file_name, i.width, i.height, i.license, i.coco_url ?? null, i.flickr_url ?? null, i.date_captured]),
  );
  expect(samples.map((s) => [s.annotationCount, s.fileMissing, s.split, s.metadata])).toEqual(
    coco.images.map((i) => [perImage.get(i.id) ?? 0, false, split, null]),
  );

  // Annotations come grouped by sample, in file order within a sample.
  const ordOf = new Map(coco.images.map((i, ord) => [i.id, ord]));
  const expected = coco.annotations
    .map((a, ord) => ({ a, ord, sampleOrd: ordOf.get(a.image_id)! }))
    .sort((x, y) => x.sampleOrd - y.sampleOrd || x.ord - y.ord);
  const names = new Map(coco.categories.map((c) => [c.id, c.name]));
  const stored = await allAnnotations(id, samples.length);
  expect(stored.map((a) => [a.ord, a.sampleOrd, a.id, a.sampleId, a.categoryId, a.categoryName])).toEqual(
    expected.map(({ a, ord, sampleOrd }) => [ord, sampleOrd, a.id, a.image_id, a.category_id, names.get(a.category_id)]),
  );
  // Exact float equality: values go from the file's text to DOUBLE and back unchanged.
  expect(stored.map((a) => [a.bbox, a.area, a.isCrowd, a.segmentationKind, a.polygonCount, a.pointCount, a.score, a.extra])).toEqual(
    expected.map(({ a }) => [{ x: a.bbox[0], y: a.bbox[1], w: a.bbox[2], h: a.bbox[3] }, a.area, a.iscrowd === 1, ...segmentationOf(a.segmentation), null, null]),
  );

  const [cats] = await env.dv.datasets.categoriesOf([id]);
  const catAnns = new Map<number, number>();
  const catImages = new Map<number, Set<number>>();
  for (const a of coco.annotations) {
    catAnns.set(a.category_id, (catAnns.get(a.category_id) ?? 0) + 1);
    if (!catImages.has(a.category_id)) catImages.set(a.category_id, new Set());
    catImages.get(a.category_id)!.add(a.image_id);
  }
  expect(cats!.map((c) => [c.categoryId, c.name, c.supercategory, c.annotationCount, c.imageCount])).toEqual(
    [...coco.categories]
      .sort((a, b) => a.id - b.id)
      .map((c) => [c.id, c.name, c.supercategory, catAnns.get(c.id) ?? 0, catImages.get(c.id)?.size ?? 0]),
  );

  const licenses = await env.dv.db.query('SELECT license_id, name, url FROM licenses WHERE dataset_id = $1 ORDER BY license_id', [id]);
  expect(licenses).toEqual([...coco.licenses].sort((a, b) => a.id - b.id).map((l) => ({ license_id: l.id, name: l.name, url: l.url })));
  return { samples, stored };
}

/** Progress: sections in file order, bytes never going back, a complete event at the end. */
function expectProgress(events: IngestEvent[], file: string, coco: CocoFile) {
  const size = fs.statSync(file).size;
  for (const e of events) {
    expect(typeof e.stage).toBe('string');
    expect(typeof e.current).toBe('number');
    expect(e.total === null || typeof e.total === 'number').toBe(true);
    expect(typeof e.message).toBe('string');
    expect(e.message.length).toBeGreaterThan(0);
    expect(e.bytes_total).toBe(size);
    expect(e.bytes_read).toBeLessThanOrEqual(size);
  }
  const bytes = events.map((e) => e.bytes_read);
  expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
  expect(bytes.at(-1)).toBe(size);

  const stages = events.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1]);
  const fileOrder = Object.keys(coco).filter((k) => k in SECTION_STAGE).map((k) => SECTION_STAGE[k]);
  expect(stages).toEqual([...fileOrder, 'complete']);
  expect(events.filter((e) => e.stage === 'complete' || e.stage === 'error')).toHaveLength(1);

  // Within a stage `current` counts up, and the stage's last event has its full count.
  const full: Record<string, number> = {
    categories: coco.categories.length, parsing_images: coco.images.length, parsing_annotations: coco.annotations.length,
  };
  for (const [stage, total] of Object.entries(full)) {
    const currents = events.filter((e) => e.stage === stage).map((e) => e.current);
    expect(currents).toEqual([...currents].sort((a, b) => a - b));
    expect(currents.at(-1)).toBe(total);
  }
  expect(events.at(-1)).toMatchObject({
    stage: 'complete', current: coco.images.length, total: coco.images.length, image_count: coco.images.length,
    annotation_count: coco.annotations.length, category_count: coco.categories.length, dataset_id: expect.stringMatching(/^[a-z2-7]{16}$/),
  });
}

beforeAll(async () => {
  env = await openTestEnv();
});

afterAll(async () => {
  await env?.close();
});

describe.skipIf(!hasShared)('coco128-instances (../shared)', () => {
  let coco: CocoFile;
  let events: IngestEvent[];
  let id: string;
  let stored: Annotation[];

  beforeAll(async () => {
    coco = readCoco(COCO128.annotations);
    ({ events, id } = await ingestOk({ annotationPath: COCO128.annotations, imageDir: COCO128.images }));
  });

  it('the oracle is the file the README describes', () => {
    expect([coco.images.length, coco.annotations.length, coco.categories.length]).toEqual([128, 939, 80]);
  });

  it('stores 128 images, 939 annotations and 80 categories, on the dataset too', async () => {
    expect(events.at(-1)).toMatchObject({ image_count: 128, annotation_count: 939, category_count: 80 });
    const d = await env.dv.datasets.get(id);
    expect([d.imageCount, d.annotationCount, d.categoryCount, d.format, d.split, d.name]).toEqual([128, 939, 80, 'coco', null, 'instances_train2017']);
    expect(d.info).toEqual(coco.info);
    expect(d.bytes).toBe(fs.statSync(COCO128.annotations).size);
    expect([d.sourcePath, d.imageDir]).toEqual([fs.realpathSync(COCO128.annotations), fs.realpathSync(COCO128.images)]);
  });

  it('stores every sample, annotation (exact bbox floats), category and license as in the file', async () => {
    ({ stored } = await expectStoredAsInFile(id, coco, null));
  });

  it('has 10 crowd RLE annotations and 929 polygons', () => {
    expect(stored.filter((a) => a.isCrowd && a.segmentationKind === 'rle')).toHaveLength(10);
    expect(stored.filter((a) => a.segmentationKind === 'polygon')).toHaveLength(929);
    expect(stored.filter((a) => a.isCrowd)).toHaveLength(10);
  });

  it('warns about exactly the 9 unused categories and the 2 images without annotations', async () => {
    const warnings = events.at(-1)!.warnings!;
    expect(warnings.map(({ code, count, examples }) => ({ code, count, examples }))).toEqual(expectedWarnings(coco));
    expect(warnings.find((w) => w.code === 'images_without_annotations')).toMatchObject({ count: 2, examples: ['000000000250.jpg', '000000000508.jpg'] });
    expect(warnings.find((w) => w.code === 'unused_categories')?.count).toBe(9);
    expect((await env.dv.datasets.get(id)).warnings).toEqual(warnings);
  });

  it('reports progress in file order, with bytes up to the file size', () => {
    expectProgress(events, COCO128.annotations, coco);
    expect(events.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1])).toEqual(['categories', 'parsing_images', 'parsing_annotations', 'complete']);
  });

  it('follows the file when it puts categories last, as COCO 2017 does', async () => {
    const { info, licenses, images, annotations, categories } = coco;
    const reordered: CocoFile = { info, licenses, images, annotations, categories } as CocoFile;
    const file = path.join(env.dir, 'categories-last.json');
    fs.writeFileSync(file, JSON.stringify(reordered));
    const { events: evs, id: other } = await ingestOk({ annotationPath: file, imageDir: COCO128.images });
    expectProgress(evs, file, reordered);
    expect(evs.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1])).toEqual(['parsing_images', 'parsing_annotations', 'categories', 'complete']);
    await expectStoredAsInFile(other, reordered, null);
    await env.dv.datasets.delete(other);
  });
});

describe('the demo dataset (generated: polygons, a crowd RLE, categories last)', () => {
  it('stores every sample, annotation, category and license as in the file, with its progress and warnings', async () => {
    const coco = readCoco(DEMO.annotations);
    const { events, id } = await ingestOk({ annotationPath: DEMO.annotations, imageDir: DEMO.images });
    expectProgress(events, DEMO.annotations, coco);
    expect(events.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1])).toEqual(['parsing_images', 'parsing_annotations', 'categories', 'complete']);
    const { stored } = await expectStoredAsInFile(id, coco, null);
    expect(stored.filter((a) => a.segmentationKind === 'rle').length).toBe(coco.annotations.filter((a) => a.iscrowd === 1).length);
    expect(stored.filter((a) => a.segmentationKind === 'polygon').length).toBeGreaterThan(0);
    const warnings = events.at(-1)!.warnings!;
    expect(warnings.map(({ code, count, examples }) => ({ code, count, examples }))).toEqual(expectedWarnings(coco));
    await env.dv.datasets.delete(id);
  });
});

type RbcSplit = readonly ['train' | 'valid' | 'test', number, number];
const rbcFiles = (split: RbcSplit[0]) => (split === 'train' ? RBC_TRAIN : RBC(split));

describe('rbc-coco-roboflow (tests/fixtures)', () => {
  rbcTests([
    ['valid', 20, 470],
    ['test', 10, 221],
  ]);
});

describe.skipIf(!hasShared)('rbc-coco-roboflow train (../shared)', () => {
  rbcTests([['train', 210, 4947]]);
});

function rbcTests(splits: readonly RbcSplit[]): void {
  const ingested = new Map<string, { events: IngestEvent[]; id: string; coco: CocoFile }>();

  beforeAll(async () => {
    for (const [split] of splits) {
      const r = await ingestOk({ annotationPath: rbcFiles(split).annotations, imageDir: rbcFiles(split).images, split });
      ingested.set(split, { ...r, coco: readCoco(rbcFiles(split).annotations) });
    }
  });

  it.each(splits)('%s: %i images and %i annotations, stored as in the file under its split', async (split, images, annotations) => {
    const { events, id, coco } = ingested.get(split)!;
    expect([coco.images.length, coco.annotations.length]).toEqual([images, annotations]);
    expect(events.at(-1)).toMatchObject({ image_count: images, annotation_count: annotations, category_count: 3 });
    const d = await env.dv.datasets.get(id);
    expect([d.split, d.imageCount, d.annotationCount]).toEqual([split, images, annotations]);
    const { samples, stored } = await expectStoredAsInFile(id, coco, split);
    expect(samples.every((s) => s.width === 416 && s.height === 416)).toBe(true);
    expect(new Set(stored.map((a) => a.segmentationKind))).toEqual(new Set(['none']));
    expect(stored.every((a) => a.polygonCount === 0 && a.pointCount === 0 && !a.isCrowd)).toBe(true);
    expectProgress(events, rbcFiles(split).annotations, coco);
  });

  it.each(splits)('%s: ids from 0 are kept', async (split) => {
    const { id, coco } = ingested.get(split)!;
    expect(coco.images[0]!.id).toBe(0);
    const first = await env.dv.samples.get(id, 0);
    expect([first.ord, first.fileName]).toEqual([0, coco.images[0]!.file_name]);
    const anns = (await env.dv.samples.annotationsOf(id, [0]))[0]!;
    expect(anns.map((a) => a.id)).toEqual(coco.annotations.filter((a) => a.image_id === 0).map((a) => a.id));
    expect(anns[0]!.id).toBe(0);
  });

  it.each(splits)('%s: the placeholder category RBC-WBC is reported as unused, and only it', async (split) => {
    const { events, id, coco } = ingested.get(split)!;
    const warnings = events.at(-1)!.warnings!;
    expect(warnings.map(({ code, count, examples }) => ({ code, count, examples }))).toEqual([
      { code: 'unused_categories', count: 1, examples: ['RBC-WBC'] },
    ]);
    expect(expectedWarnings(coco)).toEqual([{ code: 'unused_categories', count: 1, examples: ['RBC-WBC'] }]);
    const [cats] = await env.dv.datasets.categoriesOf([id]);
    expect(cats![0]).toMatchObject({ categoryId: 0, name: 'RBC-WBC', supercategory: 'none', annotationCount: 0, imageCount: 0 });
  });

  it.each(splits)('%s: info (year as a string) and ISO date_captured are kept as text', async (split) => {
    const { id, coco } = ingested.get(split)!;
    const d = await env.dv.datasets.get(id);
    expect(d.info).toEqual(coco.info);
    expect(d.info!.year).toBe('2021');
    const s = await env.dv.samples.get(id, 0);
    expect(s.dateCaptured).toBe('2021-08-28T12:48:28+00:00');
  });
}
