import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { putFile, startS3Server } from '../helpers/s3.js';
import { capturingLogger, COCO128, dataRoots, DEMO, hasShared, ingestAll, openTestEnv, RBC, RBC_TRAIN, tempDir, traces, type TestEnv } from '../helpers/env.js';
import { writeSyntheticCoco } from '../helpers/fixtures.js';

/**
 * A large annotation file is parsed on several threads, split at guessed annotation boundaries
 * (docs/ingestion.md, "Parsing in parts"). The guess must never change a result: every file here
 * is ingested once split (4 threads, parts of a few KB) and once whole (1 thread), and the two
 * databases must hold the same rows, or the two ingests end with the same error. The log's
 * `parse_parts` tells whether the split held, so each case also checks which path it took.
 */

const SPLIT = { DATAVISOR_PARSE_THREADS: '4', DATAVISOR_PARSE_MIN_PART_BYTES: '4096' };
const WHOLE = { DATAVISOR_PARSE_THREADS: '1' };

interface Coco {
  info?: Record<string, unknown>;
  licenses?: unknown[];
  images: { id: number; file_name: string; width: number; height: number; [k: string]: unknown }[];
  annotations: { id: number; image_id: number; category_id: number; [k: string]: unknown }[];
  categories: { id: number; name: string }[];
  [k: string]: unknown;
}

/**
 * The demo dataset (tests/helpers/fixtures.ts) with its sections in coco128's order, categories
 * first and annotations last: the base every written file here changes.
 */
const BASE = (() => {
  const demo = JSON.parse(fs.readFileSync(DEMO.annotations, 'utf8')) as Coco;
  return JSON.parse(ordered(demo, ['info', 'licenses', 'categories', 'images', 'annotations'])) as Coco;
})();

let split: TestEnv;
let whole: TestEnv;
let logs: Record<string, unknown>[];
let fx: string;

/** The file with its top-level keys in the given order. */
function ordered(c: Coco, keys: string[]): string {
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, c[k]])));
}

function write(name: string, text: string | Buffer): string {
  const p = path.join(fx, name);
  fs.writeFileSync(p, text);
  return p;
}

/** Everything a dataset holds, without what differs between two ingests of one file (id, times, paths). */
async function contents(env: TestEnv, id: string) {
  const { dv } = env;
  const { id: _id, createdAt: _c, ingestSeconds: _s, ...dataset } = await dv.datasets.get(id);
  const categories = (await dv.datasets.categories(id)).map(({ datasetId: _d, ...c }) => c);
  const samples = [];
  for (let after: number | null = null; ;) {
    const page = await dv.samples.page(id, {}, { kind: 'after', afterOrd: after, limit: 200 });
    samples.push(...page.samples.map(({ datasetId: _d, ...s }) => s));
    if (!page.hasMore) break;
    after = page.samples.at(-1)!.ord;
  }
  const ords = samples.map((s) => s.ord);
  const annotations = (await dv.samples.annotationsOf(id, ords, { shapes: true })).flat().map(({ datasetId: _d, ...a }) => a);
  return { dataset, categories, samples, annotations };
}

/** The parts the last ingest of the split env was read in, from its `ingest complete` log line. */
function lastParts(): number {
  const line = logs.filter((l) => l.msg === 'ingest complete').at(-1);
  return line?.parse_parts as number;
}

/**
 * Ingests `request` in both envs and checks they agree; returns the split run's events. Errors
 * agree exactly, but for malformed JSON at byte `jsonFault`: a read that resumes after a dropped
 * split cuts its blocks elsewhere, so both messages must name a byte range holding that byte.
 */
async function ingestBoth(request: IngestRequest, jsonFault?: number): Promise<{ split: IngestEvent[]; whole: IngestEvent[] }> {
  const completesBefore = logs.filter((l) => l.msg === 'ingest complete').length;
  const a = await ingestAll(split.dv, request);
  const b = await ingestAll(whole.dv, request);
  const [endA, endB] = [a.at(-1)!, b.at(-1)!];
  expect(endA.stage).toBe(endB.stage);
  if (endB.stage === 'error' && jsonFault !== undefined) {
    for (const end of [endA, endB]) {
      expect(end.code).toBe('INVALID_JSON');
      const [, from, to] = /between bytes (\d+) and (\d+)/.exec(end.message)!.map(Number);
      expect(from! <= jsonFault && jsonFault < to!, `${end.message} holds byte ${jsonFault}`).toBe(true);
    }
  } else if (endB.stage === 'error') {
    expect({ code: endA.code, message: endA.message }).toEqual({ code: endB.code, message: endB.message });
  }
  if (endB.stage === 'error') {
    expect(logs.filter((l) => l.msg === 'ingest complete').length).toBe(completesBefore);
  } else {
    expect(endB.stage, endB.message).toBe('complete');
    const { dataset_id: _a, message: _m, ...rest } = endA;
    const { dataset_id: _b, message: _n, ...restB } = endB;
    expect(rest).toEqual(restB);
    expect(await contents(split, endA.dataset_id!)).toEqual(await contents(whole, endB.dataset_id!));
  }
  return { split: a, whole: b };
}

beforeAll(async () => {
  const captured = capturingLogger();
  logs = captured.lines;
  fx = tempDir('dv-split-');
  const roots = { DATAVISOR_DATA_ROOTS: dataRoots(fx) };
  split = await openTestEnv({ ...SPLIT, ...roots }, {}, captured.log);
  whole = await openTestEnv({ ...WHOLE, ...roots });
});

afterAll(async () => {
  await split?.close();
  await whole?.close();
  fs.rmSync(fx, { recursive: true, force: true });
});

describe('files the split holds for', () => {
  it('the demo dataset (shapes, a crowd RLE, categories last) is read in 4 parts, with the same rows as whole', async () => {
    await ingestBoth({ annotationPath: DEMO.annotations, imageDir: DEMO.images, storeShapes: true });
    expect(lastParts()).toBe(4);
  });

  it.skipIf(!hasShared)('coco128 (../shared; categories before the annotations) is read in 4 parts, with the same rows as whole', async () => {
    await ingestBoth({ annotationPath: COCO128.annotations, imageDir: COCO128.images, storeShapes: true });
    expect(lastParts()).toBe(4);
  });

  it('the Roboflow export (ids from 0, a placeholder category) is read in 4 parts', async () => {
    await ingestBoth({ annotationPath: RBC('valid').annotations, imageDir: RBC('valid').images });
    expect(lastParts()).toBe(4);
  });

  it.skipIf(!hasShared)('the Roboflow export\'s train split (../shared) is read in 4 parts', async () => {
    await ingestBoth({ annotationPath: RBC_TRAIN.annotations, imageDir: RBC_TRAIN.images });
    expect(lastParts()).toBe(4);
  });

  it('categories last, as COCO 2017 has them: the last part reads them once every part before checked out', async () => {
    const file = write('cats-last.json', ordered(BASE, ['info', 'licenses', 'images', 'annotations', 'categories']));
    const { split: events } = await ingestBoth({ annotationPath: file, imageDir: DEMO.images });
    expect(lastParts()).toBe(4);
    // Stages still arrive in file order: no categories stage before the annotations end.
    const stages = events.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1]);
    expect(stages).toEqual(['parsing_images', 'parsing_annotations', 'categories', 'complete']);
  });

  it('a train2017-like file with shapes, crowd RLE and sparse ids (synthetic-coco) is read in 4 parts', async () => {
    const file = path.join(fx, 'gen.json');
    writeSyntheticCoco(file, { images: 600 });
    await ingestBoth({ annotationPath: file, imageDir: fx, storeShapes: true });
    expect(lastParts()).toBe(4);
  });

  it('NaN in the later parts is counted as it is whole', async () => {
    const c = structuredClone(BASE);
    const marks = c.annotations.slice(-200).filter((_, i) => i % 20 === 0);
    for (const a of marks) a.area = '__NaN__';
    const file = write('nan.json', JSON.stringify(c).replaceAll('"__NaN__"', 'NaN'));
    const { split: events } = await ingestBoth({ annotationPath: file, imageDir: DEMO.images });
    expect(lastParts()).toBe(4);
    const warning = events.at(-1)!.warnings!.find((w) => w.code === 'non_standard_numbers');
    expect(warning?.count).toBe(marks.length);
  });

  it('NaN and Infinity in boxes and areas of every part: kept as null, counted with the first ids, left out of every box statistic', async () => {
    const c = structuredClone(BASE);
    const n = c.annotations.length;
    // As in the real dataset of the issue (15 such boxes among 8,334), spread over every part.
    const boxes = Array.from({ length: 15 }, (_, k) => Math.floor((k * n) / 15) + 3);
    for (const i of boxes) c.annotations[i]!.bbox = ['__Infinity__', '__Infinity__', '__-Infinity__', '__-Infinity__'];
    c.annotations[1]!.bbox = [1, '__NaN__', 3, 4];
    c.annotations[2]!.bbox = [null, null, null, null]; // JSON.stringify writes NaN as null
    const areas = [5, Math.floor(n / 2), n - 2];
    for (const [k, i] of areas.entries()) c.annotations[i]!.area = k === 1 ? '__NaN__' : '__Infinity__';
    const python = JSON.stringify(c).replace(/"__(NaN|-?Infinity)__"/g, '$1');
    const { split: events } = await ingestBoth({ annotationPath: write('non-finite.json', python), imageDir: DEMO.images });
    expect(lastParts()).toBe(4);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ stage: 'complete', annotation_count: n });
    const warnings = Object.fromEntries(done.warnings!.map((w) => [w.code, { count: w.count, examples: w.examples }]));
    const ids = (ords: number[]) => ords.sort((a, b) => a - b).slice(0, 5).map((i) => c.annotations[i]!.id);
    expect(warnings.non_finite_bbox).toEqual({ count: 17, examples: ids([1, 2, ...boxes]) });
    expect(warnings.non_finite_area).toEqual({ count: 3, examples: ids(areas) });
    expect(warnings.non_standard_numbers?.count).toBe(15 * 4 + 1 + 3);
    const [nulls] = await split.dv.db.query(
      `SELECT count(*) FILTER (WHERE bbox_x IS NULL AND bbox_y IS NULL AND bbox_w IS NULL AND bbox_h IS NULL) AS boxes,
         count(*) FILTER (WHERE area IS NULL) AS areas FROM annotations WHERE dataset_id = $1`,
      [done.dataset_id!],
    );
    expect([Number(nulls!.boxes), Number(nulls!.areas)]).toEqual([17, 3]);

    // Every box statistic is what it is without those annotations at all.
    const marked = new Set([1, 2, ...boxes, ...areas]);
    const without = { ...c, annotations: c.annotations.filter((_, i) => !marked.has(i)) };
    const other = (await ingestAll(whole.dv, { annotationPath: write('without-non-finite.json', JSON.stringify(without)), imageDir: DEMO.images })).at(-1)!;
    const boxStats = (w: typeof done.warnings) =>
      w!.filter((x) => ['bbox_outside_image', 'degenerate_bbox', 'area_inconsistent_with_bbox', 'missing_bbox'].includes(x.code)).map((x) => [x.code, x.count]);
    expect(boxStats(done.warnings)).toEqual(boxStats(other.warnings));
  });

  it('quirks in the later parts are counted over every part, as whole', async () => {
    const c = structuredClone(BASE);
    const late = c.annotations.slice(-120);
    late.forEach((a, i) => {
      if (i % 4 === 0) a.id = c.annotations[0]!.id; // a duplicate of the first part's first id
      if (i % 4 === 1) a.bbox = [10000, 10000, 5, 5];
      if (i % 4 === 2) a.bbox = [1, 1, 0, 3];
      if (i % 4 === 3) a.area = 1e9;
    });
    const { split: events } = await ingestBoth({ annotationPath: write('late-quirks.json', JSON.stringify(c)), imageDir: DEMO.images });
    expect(lastParts()).toBe(4);
    const counts = Object.fromEntries(events.at(-1)!.warnings!.map((w) => [w.code, w.count]));
    expect(counts).toMatchObject({ duplicate_annotation_ids: 31, bbox_outside_image: 30, degenerate_bbox: 30 });
    expect(counts.area_inconsistent_with_bbox).toBeGreaterThanOrEqual(30);
  });

  it('an unknown top-level key after the annotations (COCO 2014\'s "type") is kept as whole', async () => {
    const file = write('type-last.json', JSON.stringify({ ...BASE, type: 'instances' }));
    await ingestBoth({ annotationPath: file, imageDir: DEMO.images });
    expect(lastParts()).toBe(4);
  });
});

describe('files the guessed boundaries miss: read whole, with the same rows', () => {
  it('"}, {" inside strings, where every split point lands', async () => {
    const c = structuredClone(BASE);
    for (const a of c.annotations) a.note = '}, {"id": 1}, {'.repeat(40) + '\\"}, {';
    await ingestBoth({ annotationPath: write('strings.json', JSON.stringify(c)), imageDir: DEMO.images });
    expect(lastParts()).toBe(1);
  });

  it('objects nested in annotations ("}, {" one level deeper)', async () => {
    const c = structuredClone(BASE);
    for (const a of c.annotations) a.parts = Array.from({ length: 30 }, (_, i) => ({ i, visible: i % 2 === 0 }));
    await ingestBoth({ annotationPath: write('nested.json', JSON.stringify(c)), imageDir: DEMO.images });
    expect(lastParts()).toBe(1);
  });

  it('split points in the images array', async () => {
    const c = structuredClone(BASE);
    for (const im of c.images) im.caption = 'a long caption '.repeat(400);
    await ingestBoth({ annotationPath: write('images-heavy.json', JSON.stringify(c)), imageDir: DEMO.images });
    expect(lastParts()).toBe(1);
  });
});

describe('bad files end with the error they end with whole, and leave nothing', () => {
  const text = JSON.stringify(BASE);
  /** Byte offset of `}, {` number `k` from the end of the annotations array. */
  const boundaryFromEnd = (k: number) => {
    let i = text.lastIndexOf(']', text.length - 1);
    for (let n = 0; n < k; n++) i = text.lastIndexOf('},{', i - 1);
    return i;
  };

  afterAll(async () => {
    expect(await traces(split.dv)).toMatchObject({ staging: 0 });
  });

  it('malformed JSON in the last part', async () => {
    const at = boundaryFromEnd(10);
    const file = write('malformed.json', `${text.slice(0, at)}},,{${text.slice(at + 3)}`);
    await ingestBoth({ annotationPath: file, imageDir: DEMO.images }, at + 2);
  });

  it('a file truncated in its last part', async () => {
    const file = write('truncated.json', text.slice(0, Math.floor(text.length * 0.9)));
    const { split: events } = await ingestBoth({ annotationPath: file, imageDir: DEMO.images });
    expect(events.at(-1)!.code).toBe('INVALID_JSON');
  });

  it('an annotation of an unknown image in a later part names its position in the whole file', async () => {
    const c = structuredClone(BASE);
    c.annotations[c.annotations.length - 5]!.image_id = 999999999;
    const { split: events } = await ingestBoth({ annotationPath: write('orphan.json', JSON.stringify(c)), imageDir: DEMO.images });
    expect(events.at(-1)!.message).toContain(`annotations[${c.annotations.length - 5}]`);
  });

  it('a second "categories" key after the annotations', async () => {
    const file = write('two-categories.json', `${text.slice(0, -1)},"categories":[]}`);
    const { split: events } = await ingestBoth({ annotationPath: file, imageDir: DEMO.images });
    expect(events.at(-1)!.code).toMatch(/INVALID_(JSON|COCO)/);
  });

  it('a wrong type in a later part', async () => {
    const c = structuredClone(BASE);
    c.annotations[c.annotations.length - 3]!.bbox = 'wide';
    const { split: events } = await ingestBoth({ annotationPath: write('wrong-type.json', JSON.stringify(c)), imageDir: DEMO.images });
    expect(events.at(-1)!.code).toBe('INVALID_COCO');
  });

  it('a number where an annotation belongs, in a later part', async () => {
    const at = boundaryFromEnd(30);
    const file = write('number-element.json', `${text.slice(0, at)}},7,{${text.slice(at + 3)}`);
    const { split: events } = await ingestBoth({ annotationPath: file, imageDir: DEMO.images });
    expect(events.at(-1)!.code).toBe('INVALID_COCO');
  });

  it('stopping a split ingest mid-way leaves nothing, and the next one completes', async () => {
    for await (const e of split.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images })) {
      if (e.stage === 'parsing_annotations') break;
    }
    expect(split.dv.ingestion.active).toBe(0);
    const before = await traces(split.dv);
    const events = await ingestAll(split.dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images });
    expect(events.at(-1)!.stage).toBe('complete');
    expect((await traces(split.dv)).samples).toBe(before.samples + 128);
  });
});

describe('a file in a bucket', () => {
  it('is read in 4 ranged downloads from S3, with the same rows as the local file read whole', async () => {
    const s3 = await startS3Server(['datasets']);
    const captured = capturingLogger();
    const bucketEnv = await openTestEnv({ ...SPLIT, ...s3.env, DATAVISOR_DATA_ROOTS: dataRoots('s3://datasets') }, {}, captured.log);
    try {
      await putFile(s3.client, 'datasets', 'demo.json', DEMO.annotations);
      const a = await ingestAll(bucketEnv.dv, { annotationPath: 's3://datasets/demo.json', imageDir: DEMO.images, storeShapes: true, datasetName: 'demo' });
      const b = await ingestAll(whole.dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images, storeShapes: true, datasetName: 'demo' });
      expect(a.at(-1)!.stage, a.at(-1)!.message).toBe('complete');
      expect(captured.lines.find((l) => l.msg === 'ingest complete')?.parse_parts).toBe(4);
      const withoutSource = ({ dataset: { sourcePath: _p, ...dataset }, ...rest }: Awaited<ReturnType<typeof contents>>) => ({ dataset, ...rest });
      expect(withoutSource(await contents(bucketEnv, a.at(-1)!.dataset_id!))).toEqual(withoutSource(await contents(whole, b.at(-1)!.dataset_id!)));
    } finally {
      await bucketEnv.close();
      await s3.stop();
    }
  });
});
