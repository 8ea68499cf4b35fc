import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Annotation, Sample } from '../../dist/services/datasets/samples.js';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { readerNamed } from '../../dist/services/ingest/formats/registry.js';
import { ingestAll, openTestEnv, traces, type TestEnv } from '../helpers/env.js';
import { putFile, startS3Server, type S3TestServer } from '../helpers/s3.js';

/**
 * The Pascal VOC reader through the public ingest: tests/fixtures/voc/basic (hand-written from the
 * devkit's description of the format; README there) plus JPEGs drawn here with sharp, ingested
 * from disk and from an S3 bucket, read back through the sample and dataset services. Every
 * expected value below was worked out by hand from the XML files, not by the reader's code.
 */

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/voc/basic');
/** Images drawn into JPEGImages/ (width × height); 000005.jpg is left out on purpose. */
const IMAGES: Record<string, [number, number]> = {
  '000001.jpg': [64, 48], '000002.jpg': [64, 48], '000003.jpg': [32, 24], '000004.jpg': [40, 30], '000006.jpg': [64, 48],
  '000007.jpg': [64, 48], '000008.jpg': [64, 48], '000009.jpg': [64, 48], '写真_é.jpg': [64, 48], 'broken.jpg': [64, 48],
  'orphan.jpg': [20, 10],
};

/** A copy of the fixture with its images, inside the test's data root. */
async function vocFolder(into: string): Promise<string> {
  const dir = path.join(into, 'VOC2012');
  fs.cpSync(FIXTURE, dir, { recursive: true });
  fs.rmSync(path.join(dir, 'README.md'), { force: true });
  fs.mkdirSync(path.join(dir, 'JPEGImages'));
  for (const [name, [width, height]] of Object.entries(IMAGES)) {
    await sharp({ create: { width, height, channels: 3, background: '#7a7a7a' } }).jpeg().toFile(path.join(dir, 'JPEGImages', name));
  }
  // Not an image: not a sample either.
  fs.writeFileSync(path.join(dir, 'JPEGImages', 'notes.txt'), 'taken in 2024');
  return dir;
}

// Sorted by UTF-16 code units: "" < bird < café ('f' < 't') < cat < dog < person < 猫.
const CATEGORY_IDS = { '': 0, bird: 1, café: 2, cat: 3, dog: 4, person: 5, 猫: 6 } as const;

/** Samples in id order: annotated files in XML-name order, then images no XML names, by name. */
const SAMPLES = [
  { id: 0, fileName: '000001.jpg', width: 64, height: 48, split: 'train', annotations: 2 },
  { id: 1, fileName: '000002.jpg', width: 64, height: 48, split: 'train', annotations: 2 },
  { id: 2, fileName: '000003.jpg', width: 32, height: 24, split: 'val', annotations: 1 }, // <size> 0×0: from the header
  { id: 3, fileName: '000004.jpg', width: 40, height: 30, split: 'test', annotations: 1 }, // no <size>: from the header
  { id: 4, fileName: '000005.jpg', width: 64, height: 48, split: 'test', annotations: 1, missing: true },
  { id: 5, fileName: '000006.jpg', width: 64, height: 48, split: 'train', annotations: 4 },
  { id: 6, fileName: '000007.jpg', width: 64, height: 48, split: null, annotations: 0 }, // only in aeroplane_train.txt
  { id: 7, fileName: '000008.jpg', width: 64, height: 48, split: 'trainval', annotations: 1 }, // name from <path>
  { id: 8, fileName: '000009.jpg', width: 64, height: 48, split: 'val', annotations: 1 }, // stale <filename>; val beats test
  { id: 9, fileName: '写真_é.jpg', width: 64, height: 48, split: null, annotations: 2 },
  { id: 10, fileName: 'broken.jpg', width: 64, height: 48, split: null, annotations: 0 }, // its XML is malformed
  { id: 11, fileName: 'orphan.jpg', width: 20, height: 10, split: null, annotations: 0 }, // no XML at all
];

/**
 * Boxes by hand: x = xmin - 1, y = ymin - 1, w = xmax - xmin + 1, h = ymax - ymin + 1.
 * Ids: from 1, in sample order, then in file order within a file.
 */
const ANNOTATIONS = [
  { id: 1, sample: 0, category: 'dog', bbox: [0, 0, 64, 48], area: 3072, extra: { difficult: false, pose: 'Left', truncated: true } }, // 1,1,64,48: the whole image
  {
    id: 2, sample: 0, category: 'person', bbox: [9, 4, 11, 26], area: 286, // 10,5,20,30
    extra: { difficult: true, pose: 'Frontal', truncated: false, parts: [{ name: 'head', bbox: [11, 4, 7, 6] }, { name: 'hand', bbox: [9, 19, 3, 4] }] },
  },
  { id: 3, sample: 1, category: 'cat', bbox: [4, 5, 11, 11], area: 121, extra: { difficult: false, pose: 'Unspecified', truncated: false, occluded: true } }, // 5,6,15,16 in shuffled order
  { id: 4, sample: 1, category: 'cat', bbox: [29, 9, 11, 11], area: 121, extra: { difficult: false, occluded: false } }, // no <difficult>: false
  { id: 5, sample: 2, category: 'bird', bbox: [1, 1, 7, 7], area: 49, extra: { difficult: false } }, // 2,2,8,8
  { id: 6, sample: 3, category: 'dog', bbox: [2, 2, 8, 8], area: 64, extra: { difficult: false } }, // 3,3,10,10
  { id: 7, sample: 4, category: 'person', bbox: [0, 0, 5, 5], area: 25, extra: { difficult: false } }, // 1,1,5,5
  { id: 8, sample: 5, category: 'person', bbox: [9, 9, 1, 11], area: 11, extra: { difficult: false } }, // 10,10,10,20: zero size in the file
  { id: 9, sample: 5, category: 'dog', bbox: [29, 4, -9, 11], area: null, extra: { difficult: false } }, // 30,5,20,15: inverted
  { id: 10, sample: 5, category: '', bbox: [0, 0, 4, 4], area: 16, extra: { difficult: false } }, // <name></name>
  { id: 11, sample: 5, category: '', bbox: [1, 1, 5, 5], area: 25, extra: { difficult: false } }, // no <name>
  { id: 12, sample: 7, category: 'cat', bbox: [0, 0, 10, 10], area: 100, extra: { difficult: false, truncated: false } },
  { id: 13, sample: 8, category: 'bird', bbox: [0, 1, 3, 3], area: 9, extra: { difficult: false } }, // 1,2,3,4
  { id: 14, sample: 9, category: '猫', bbox: [4, 4, 21, 21], area: 441, extra: { difficult: false } }, // 5,5,25,25
  { id: 15, sample: 9, category: 'café', bbox: [29.5, 9, 11, 11], area: 121, extra: { difficult: true, pose: 'Rear', truncated: true } }, // 30.5,10,40.5,20
];

/** Every warning with its count and examples, from the fixture's quirks. */
const WARNINGS = {
  // The writer's, from the stored rows:
  degenerate_bbox: { count: 1, examples: [9] },
  images_without_annotations: { count: 3, examples: ['000007.jpg', 'broken.jpg', 'orphan.jpg'] },
  image_files_missing: { count: 1, examples: ['000005.jpg'] },
  // The reader's:
  bbox_zero_size: { count: 1, examples: ['000006.xml: object 1 (person)'] },
  bbox_inverted: { count: 1, examples: ['000006.xml: object 2 (dog)'] },
  empty_category_names: { count: 2, examples: ['000006.xml: object 3', '000006.xml: object 4'] },
  unparsable_xml: { count: 2, examples: [expect.stringMatching(/^broken\.xml: \d+:\d+: /), 'notvoc.xml: the root element is <annotations>, not <annotation>'] },
  images_without_xml: { count: 1, examples: ['orphan.jpg'] },
  split_conflicts: { count: 1, examples: ['000009: val.txt, test.txt, trainval.txt'] },
  split_ids_unknown: { count: 1, examples: ['val.txt: ghost'] },
};

async function ingestOk(env: TestEnv, request: IngestRequest): Promise<IngestEvent> {
  const events = await ingestAll(env.dv, request);
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('complete');
  return last;
}

/** A failed ingest leaves nothing behind. */
async function ingestError(env: TestEnv, request: IngestRequest): Promise<IngestEvent> {
  const before = await traces(env.dv);
  const events = await ingestAll(env.dv, request);
  const last = events.at(-1)!;
  expect(last.stage, last.message).toBe('error');
  expect(await traces(env.dv)).toEqual(before);
  return last;
}

async function readBack(env: TestEnv, datasetId: string): Promise<{ samples: Sample[]; annotations: Annotation[] }> {
  const page = await env.dv.samples.page(datasetId, {}, { kind: 'offset', offset: 0, limit: 200 });
  const annotations = (await env.dv.samples.annotationsOf(datasetId, page.samples.map((s) => s.ord))).flat();
  return { samples: page.samples, annotations: annotations.sort((a, b) => a.id - b.id) };
}

/** The whole fixture as read back, against the hand-made tables above. */
async function expectFixture(env: TestEnv, last: IngestEvent, requestSplit: string | null = null) {
  expect(last).toMatchObject({ image_count: SAMPLES.length, annotation_count: ANNOTATIONS.length, category_count: 7 });
  const { samples, annotations } = await readBack(env, last.dataset_id!);
  expect(samples.map((s) => ({ id: s.id, fileName: s.fileName, width: s.width, height: s.height, split: s.split, annotations: s.annotationCount, missing: s.fileMissing })))
    .toEqual(SAMPLES.map((s) => ({ ...s, split: s.split ?? requestSplit, missing: s.missing ?? false })));
  expect(annotations.map((a) => ({
    id: a.id, sample: a.sampleId, category: a.categoryName, categoryId: a.categoryId, bbox: a.bbox && [a.bbox.x, a.bbox.y, a.bbox.w, a.bbox.h], area: a.area, extra: a.extra,
  }))).toEqual(ANNOTATIONS.map((a) => ({ ...a, categoryId: CATEGORY_IDS[a.category as keyof typeof CATEGORY_IDS] })));
  expect(annotations.every((a) => !a.isCrowd && a.segmentationKind === 'none' && a.score === null)).toBe(true);

  const categories = await env.dv.datasets.categories(last.dataset_id!);
  expect(categories.map((c) => [c.categoryId, c.name, c.annotationCount, c.imageCount])).toEqual([
    [0, '', 2, 1], [1, 'bird', 2, 2], [2, 'café', 1, 1], [3, 'cat', 3, 2], [4, 'dog', 3, 3], [5, 'person', 3, 3], [6, '猫', 1, 1],
  ]);

  const warnings = Object.fromEntries(last.warnings!.map((w) => [w.code, { count: w.count, examples: w.examples }]));
  expect(warnings).toEqual(WARNINGS);
  const stored = await env.dv.datasets.get(last.dataset_id!);
  expect(stored.warnings.map((w) => w.code).sort()).toEqual(Object.keys(WARNINGS).sort());
  expect(stored.format).toBe('voc');
}

describe('Pascal VOC from a local folder', () => {
  let env: TestEnv;
  let voc: string;

  beforeAll(async () => {
    env = await openTestEnv();
    voc = await vocFolder(env.dir);
  });
  afterAll(async () => {
    await env?.close();
  });

  it('reads images, boxes, attributes, splits, categories and every warning', async () => {
    const last = await ingestOk(env, { annotationPath: voc, format: 'voc' });
    await expectFixture(env, last);
    const d = await env.dv.datasets.get(last.dataset_id!);
    expect(d).toMatchObject({ name: 'VOC2012', sourcePath: voc, imageDir: path.join(voc, 'JPEGImages') });
  });

  it('stores the annotations sorted by sample, with their final category ids', async () => {
    const last = await ingestOk(env, { annotationPath: voc, format: 'voc' });
    // In the table's own order (rowid: as written): the hand-made table's, whose ids follow the samples.
    const rows = await env.dv.db.query(
      `SELECT sample_ord, annotation_id, category_id FROM annotations WHERE dataset_id = $1 AND label_set = 0 ORDER BY rowid`, [last.dataset_id!],
    );
    expect(rows.map((r) => [r.sample_ord, r.annotation_id, r.category_id])).toEqual(
      ANNOTATIONS.map((a) => [a.sample, a.id, CATEGORY_IDS[a.category as keyof typeof CATEGORY_IDS]]),
    );
  });

  it('keeps what the file says of an image as metadata', async () => {
    const last = await ingestOk(env, { annotationPath: voc, format: 'voc' });
    const { samples } = await readBack(env, last.dataset_id!);
    expect(samples[0]!.metadata).toEqual({
      annotation_file: '000001.xml', folder: 'VOC2007',
      source: { database: 'The VOC2007 Database', annotation: 'PASCAL VOC2007', image: 'flickr', flickrid: '123456789' },
      owner: { flickrid: 'someone', name: 'Some One' }, depth: 3, segmented: 0,
    });
    // Found under its XML file's name; the file's own <filename> is kept beside it.
    expect(samples[8]!.metadata).toMatchObject({ annotation_file: '000009.xml', filename: 'IMG_0009.JPG', path: '/home/annotator/voc/IMG_0009.JPG' });
    expect(samples[7]!.metadata).toMatchObject({ path: 'C:\\Users\\annotator\\voc\\000008.jpg' });
    expect(samples[11]!.metadata).toBeNull();
  });

  it("gives images that no list names the request's split", async () => {
    const last = await ingestOk(env, { annotationPath: voc, format: 'voc', split: 'unlisted' });
    await expectFixture(env, last, 'unlisted');
  });

  it('ingests the same folder the same way every time', async () => {
    const a = await ingestOk(env, { annotationPath: voc, format: 'voc' });
    const b = await ingestOk(env, { annotationPath: voc, format: 'voc' });
    expect(await readBack(env, b.dataset_id!)).toEqual(
      JSON.parse(JSON.stringify(await readBack(env, a.dataset_id!)).replaceAll(a.dataset_id!, b.dataset_id!)),
    );
  });

  it('takes image_dir when given instead of JPEGImages/', async () => {
    const elsewhere = path.join(env.dir, 'pictures');
    fs.cpSync(path.join(voc, 'JPEGImages'), elsewhere, { recursive: true });
    fs.rmSync(path.join(elsewhere, '000001.jpg'));
    const last = await ingestOk(env, { annotationPath: voc, imageDir: elsewhere, format: 'voc' });
    expect(last.warnings!.find((w) => w.code === 'image_files_missing')).toMatchObject({ count: 2, examples: ['000001.jpg', '000005.jpg'] });
    expect((await env.dv.datasets.get(last.dataset_id!)).imageDir).toBe(elsewhere);
  });

  it('works without ImageSets/: every split is the request\'s', async () => {
    const bare = path.join(env.dir, 'bare');
    fs.cpSync(voc, bare, { recursive: true });
    fs.rmSync(path.join(bare, 'ImageSets'), { recursive: true });
    const last = await ingestOk(env, { annotationPath: bare, format: 'voc', split: 'all' });
    const { samples } = await readBack(env, last.dataset_id!);
    expect(new Set(samples.map((s) => s.split))).toEqual(new Set(['all']));
    expect(last.warnings!.map((w) => w.code)).not.toContain('split_ids_unknown');
  });

  it('streams a large folder in steps, in name order, with bounded reads', async () => {
    const big = path.join(env.dir, 'big');
    fs.mkdirSync(path.join(big, 'Annotations'), { recursive: true });
    fs.mkdirSync(path.join(big, 'JPEGImages'));
    const n = 1500;
    // Written in reverse so the folder's own order is not the name order.
    for (let i = n - 1; i >= 0; i--) {
      const id = String(i).padStart(6, '0');
      const objects = Array.from({ length: i % 3 }, (_, k) =>
        `<object><name>c${(i + k) % 5}</name><difficult>${k % 2}</difficult><bndbox><xmin>${k + 1}</xmin><ymin>1</ymin><xmax>${k + 10}</xmax><ymax>10</ymax></bndbox></object>`);
      fs.writeFileSync(path.join(big, 'Annotations', `${id}.xml`),
        `<annotation><filename>${id}.jpg</filename><size><width>640</width><height>480</height></size>${objects.join('')}</annotation>`);
    }
    const events = await ingestAll(env.dv, { annotationPath: big, format: 'voc' });
    const last = events.at(-1)!;
    expect(last.stage, last.message).toBe('complete');
    // 0, 1 or 2 objects per file: 500 × (0 + 1 + 2).
    expect(last).toMatchObject({ image_count: n, annotation_count: 1500, category_count: 5 });
    // Several progress steps: the reader hands batches over as it goes (each step is applied before the next is read).
    expect(events.filter((e) => e.stage === 'parsing_images').length).toBeGreaterThanOrEqual(2);
    const page = await env.dv.samples.page(last.dataset_id!, {}, { kind: 'offset', offset: 1000, limit: 3 });
    expect(page.samples.map((s) => [s.id, s.fileName])).toEqual([[1000, '001000.jpg'], [1001, '001001.jpg'], [1002, '001002.jpg']]);
    const anns = (await env.dv.samples.annotationsOf(last.dataset_id!, [page.samples[2]!.ord])).flat();
    // 001002: i % 3 = 0 objects; 001001: 2 objects (c1, c2).
    expect(anns).toEqual([]);
    const prev = (await env.dv.samples.annotationsOf(last.dataset_id!, [page.samples[1]!.ord])).flat().sort((a, b) => a.id - b.id);
    expect(prev.map((a) => [a.categoryName, a.bbox, a.extra])).toEqual([
      ['c1', { x: 0, y: 0, w: 10, h: 10 }, { difficult: false }],
      ['c2', { x: 1, y: 0, w: 10, h: 10 }, { difficult: true }],
    ]);
    // Images without XML: every one of them, as none has a file here.
    expect(last.warnings!.find((w) => w.code === 'image_files_missing')?.count).toBe(n);
  });

  it('keeps elements named like Object.prototype keys as plain keys', async () => {
    const odd = path.join(env.dir, 'odd');
    fs.mkdirSync(path.join(odd, 'Annotations'), { recursive: true });
    fs.mkdirSync(path.join(odd, 'JPEGImages'));
    fs.writeFileSync(path.join(odd, 'Annotations', 'a.xml'), `<annotation><filename>a.jpg</filename><size><width>8</width><height>8</height></size>
      <__proto__><polluted>yes</polluted></__proto__><constructor>x</constructor>
      <object><name>dog</name><__proto__>1</__proto__><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>`);
    const last = await ingestOk(env, { annotationPath: odd, format: 'voc' });
    const { samples, annotations } = await readBack(env, last.dataset_id!);
    expect(Object.getOwnPropertyDescriptor(samples[0]!.metadata, '__proto__')?.value).toEqual({ polluted: 'yes' });
    expect(samples[0]!.metadata).toMatchObject({ constructor: 'x' });
    expect(Object.getOwnPropertyDescriptor(annotations[0]!.extra, '__proto__')?.value).toBe('1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('stops cleanly when the consumer leaves mid-way', async () => {
    const before = await traces(env.dv);
    const it = env.dv.ingestion.ingest({ annotationPath: voc, format: 'voc' });
    await it.next();
    await it.return(undefined);
    expect(await traces(env.dv)).toEqual(before);
  });
});

describe('what is not a VOC folder', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await openTestEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  const folder = (name: string, files: Record<string, string>) => {
    const dir = path.join(env.dir, name);
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), text);
    }
    return dir;
  };

  it.each([
    ['a COCO folder', { 'annotations/instances_val.json': '{}', 'val2017/a.jpg': 'x' }, /is not a Pascal VOC folder: it has no Annotations\/ folder\. It looks like a COCO dataset .*format "coco"/],
    ['a YOLO folder', { 'data.yaml': 'names: [a]', 'images/train/a.jpg': 'x', 'labels/train/a.txt': '0 0.5 0.5 1 1' }, /It looks like a YOLO dataset/],
    ['a VOCdevkit folder', { 'VOC2012/Annotations/a.xml': '<annotation/>' }, /It looks like a VOCdevkit folder: give one of its years, e\.g\. ".*VOC2012"/],
    ['XML files with their images', { 'a.xml': '<annotation/>', 'b.xml': '<annotation/>', 'a.jpg': 'x' }, /holds 2 XML file\(s\) directly: put them in an Annotations\/ folder/],
    ['an empty folder', { '.keep': '' }, /It holds \.keep\./],
  ])('%s: says what it looks like and what to do', async (name, files, message) => {
    const e = await ingestError(env, { annotationPath: folder(name.replaceAll(' ', '-'), files), format: 'voc' });
    expect(e.code).toBe('BAD_USER_INPUT');
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/A VOC folder \(VOC2007\/VOC2012 layout\) holds Annotations\//);
  });

  it('the Annotations/ folder itself: give the one above', async () => {
    const dir = folder('voc-up', { 'Annotations/a.xml': '<annotation/>', 'JPEGImages/a.jpg': 'x' });
    const e = await ingestError(env, { annotationPath: path.join(dir, 'Annotations'), format: 'voc' });
    expect(e.message).toMatch(new RegExp(`It is an Annotations/ folder itself: give the folder above it, "${dir}"`));
  });

  it('a file instead of a folder', async () => {
    const dir = folder('files', { 'instances.json': '{}', 'one.xml': '<annotation/>' });
    const json = await ingestError(env, { annotationPath: path.join(dir, 'instances.json'), format: 'voc' });
    expect(json.message).toMatch(/is a file; format "voc" reads a folder .* A JSON file is a COCO annotation file: ingest it with format "coco"\./);
    const xml = await ingestError(env, { annotationPath: path.join(dir, 'one.xml'), format: 'voc' });
    expect(xml.message).toMatch(/One XML file annotates one image: give the folder above its Annotations\/ folder\./);
  });

  it('Annotations/ without JPEGImages/ and no image_dir', async () => {
    const dir = folder('no-images', { 'Annotations/a.xml': '<annotation/>', 'ImageSets/Main/train.txt': 'a\n' });
    const e = await ingestError(env, { annotationPath: dir, format: 'voc' });
    expect(e.message).toMatch(/has Annotations\/ but no JPEGImages\/ folder: give image_dir/);
  });

  it('a folder outside the data roots, or missing', async () => {
    expect((await ingestError(env, { annotationPath: '/etc', format: 'voc' })).code).toBe('FORBIDDEN');
    expect((await ingestError(env, { annotationPath: path.join(env.dir, 'nowhere'), format: 'voc' })).code).toBe('FILE_NOT_FOUND');
  });

  it('an Annotations/ symlink that leads out of the data roots is refused', async () => {
    const dir = folder('escape', { 'JPEGImages/a.jpg': 'x' });
    fs.symlinkSync('/etc', path.join(dir, 'Annotations'));
    expect((await ingestError(env, { annotationPath: dir, format: 'voc' })).code).toBe('FORBIDDEN');
  });

  it('an XML symlink that leads out of the data roots is skipped, not read', async () => {
    const dir = folder('escape-file', {
      'Annotations/a.xml': '<annotation><filename>a.jpg</filename><size><width>4</width><height>4</height></size></annotation>',
    });
    fs.mkdirSync(path.join(dir, 'JPEGImages'));
    await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).jpeg().toFile(path.join(dir, 'JPEGImages', 'a.jpg'));
    fs.symlinkSync('/etc/hostname', path.join(dir, 'Annotations', 'b.xml'));
    const last = await ingestOk(env, { annotationPath: dir, format: 'voc' });
    expect(last.image_count).toBe(1);
    expect(last.warnings!.find((w) => w.code === 'unparsable_xml')).toMatchObject({ count: 1, examples: [expect.stringMatching(/^b\.xml: a symlink/)] });
  });
});

describe('format detection', () => {
  const voc = readerNamed('voc');
  const coco = readerNamed('coco');
  const dir = (name: string, entries: string[]) => ({ kind: 'directory' as const, name, head: '', entries });
  const file = (name: string, head: string) => ({ kind: 'file' as const, name, head, entries: [] });

  it('claims a folder with Annotations/ beside JPEGImages/ or ImageSets/', () => {
    expect(voc.detect(dir('VOC2012', ['Annotations/', 'ImageSets/', 'JPEGImages/', 'SegmentationClass/']))).toBe(true);
    expect(voc.detect(dir('export', ['Annotations/', 'JPEGImages/']))).toBe(true);
    expect(voc.detect(dir('sets-only', ['Annotations/', 'ImageSets/']))).toBe(true);
  });

  it('claims no COCO file, YOLO YAML, COCO folder, VOCdevkit or lone XML', () => {
    const others = [
      file('instances_val2017.json', '{"images": ['),
      file('data.yaml', 'path: ../datasets/coco128\ntrain: images/train2017\nnames:\n  0: person\n'),
      file('000005.xml', '<annotation><folder>VOC2007</folder>'),
      dir('coco', ['annotations/', 'train2017/', 'val2017/']),
      dir('VOCdevkit', ['VOC2007/', 'VOC2012/']),
      dir('Annotations-only', ['Annotations/']),
      dir('yolo', ['images/', 'labels/', 'data.yaml']),
    ];
    for (const probe of others) expect(voc.detect(probe), probe.name).toBe(false);
    // And COCO does not claim a VOC folder.
    expect(coco.detect(dir('VOC2012', ['Annotations/', 'JPEGImages/']))).toBe(false);
  });
});

describe('Pascal VOC from an S3 bucket', () => {
  let s3: S3TestServer;
  let env: TestEnv;
  let local: string;

  beforeAll(async () => {
    s3 = await startS3Server(['datasets']);
    env = await openTestEnv({ ...s3.env, DATAVISOR_DATA_ROOTS: 's3://datasets/voc' }, { storage: { listPageSize: 5 } });
    local = await vocFolder(env.dir);
    const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    for (const f of walk(local)) await putFile(s3.client, 'datasets', `voc/VOC2012/${path.relative(local, f)}`, f);
  });
  afterAll(async () => {
    await env?.close();
    await s3?.stop();
  });

  it('reads the same dataset as from disk (sizes from image headers fetched by range)', async () => {
    const last = await ingestOk(env, { annotationPath: 's3://datasets/voc/VOC2012', format: 'voc' });
    await expectFixture(env, last);
    expect(await env.dv.datasets.get(last.dataset_id!)).toMatchObject({
      name: 'VOC2012', sourcePath: 's3://datasets/voc/VOC2012', imageDir: 's3://datasets/voc/VOC2012/JPEGImages',
    });
  });

  it('a prefix without Annotations/ is not VOC; one outside the roots is refused', async () => {
    const e = await ingestError(env, { annotationPath: 's3://datasets/voc/VOC2012/JPEGImages', format: 'voc' });
    expect(e.message).toMatch(/is not a Pascal VOC folder/);
    expect((await ingestError(env, { annotationPath: 's3://datasets/other', format: 'voc' })).code).toBe('FORBIDDEN');
  });
});
