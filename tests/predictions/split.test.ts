import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importAll as importEvents, ingestJson, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * A results file large enough to be parsed in parts (three threads, parts of ≥ 20 KB): the rows
 * stored are the file's, in its order, and a file the split does not fit (an error in a later
 * part, a first detection without a box) is read as one part, with the same answer as unsplit.
 */

const IMAGES = Array.from({ length: 40 }, (_, i) => 100 + i * 3);
const CATEGORIES = [1, 2, 5];
const gt = {
  images: IMAGES.map((id) => ({ id, file_name: `${id}.jpg`, width: 640, height: 480 })),
  annotations: [{ id: 1, image_id: IMAGES[0], category_id: 1, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 }],
  categories: CATEGORIES.map((id) => ({ id, name: `c${id}` })),
};

/** Detections grouped by image, as detectors write them; values from a fixed linear congruential sequence. */
function results(count: number) {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, (_, i) => ({
    image_id: IMAGES[Math.floor((i * IMAGES.length) / count)]!,
    category_id: CATEGORIES[Math.floor(next() * CATEGORIES.length)]!,
    bbox: [Math.round(next() * 5000) / 10, Math.round(next() * 4000) / 10, Math.round(next() * 900 + 10) / 10, Math.round(next() * 900 + 10) / 10],
    score: Math.round(next() * 1e6) / 1e6,
  }));
}

let env: TestEnv;
let datasetId: string;
const logs: Record<string, unknown>[] = [];
let n = 0;

function write(content: unknown): string {
  const file = path.join(env.dir, `results-${n++}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 1));
  return file;
}

const importAll = (resultsPath: string, name: string) => importEvents(env.dv, { datasetId, resultsPath, name });

async function rowsOf(name: string) {
  const run = await env.dv.predictions.get(datasetId, name);
  return env.dv.db.query(
    `SELECT ord - $3 AS position, annotation_id, image_id, category_id, score, bbox_x, bbox_y, bbox_w, bbox_h, area
     FROM annotations WHERE dataset_id = $1 AND label_set = $2 ORDER BY ord`,
    [datasetId, run.labelSet, run.ordBase],
  );
}

const droppedSplits = () => logs.filter((l) => /read in one part/.test(String(l.msg))).length;

beforeAll(async () => {
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  env = await openTestEnv({ DATAVISOR_PARSE_THREADS: '3', DATAVISOR_PARSE_MIN_PART_BYTES: '20000' }, {}, log);
  datasetId = await ingestJson(env, 'gt.json', gt);
});
afterAll(() => env?.close());

describe('a results file parsed in parts', () => {
  it('stores every detection of the file, in its order, numbered by position', async () => {
    const file = results(1500);
    const resultsPath = write(file);
    expect(fs.statSync(resultsPath).size).toBeGreaterThan(3 * 20000);
    const events = await importAll(resultsPath, 'split');
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    expect(droppedSplits()).toBe(0);
    const rows = await rowsOf('split');
    expect(rows).toHaveLength(file.length);
    rows.forEach((r, i) => {
      const d = file[i]!;
      expect({
        position: Number(r.position), id: Number(r.annotation_id), image: Number(r.image_id), category: Number(r.category_id), score: r.score,
        bbox: [r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h], area: r.area,
      }).toEqual({ position: i, id: i + 1, image: d.image_id, category: d.category_id, score: d.score, bbox: d.bbox, area: d.bbox[2]! * d.bbox[3]! });
    });
  });

  it('names the position in the file of an error in a later part', async () => {
    const file: Record<string, unknown>[] = results(1500);
    const bad = 1234;
    file[bad] = { ...file[bad], score: 'high' };
    const events = await importAll(write(file), 'bad-score');
    expect(events.at(-1)).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
    expect(events.at(-1)!.message).toContain(`(at [${bad}].score)`);
    expect((await env.dv.predictions.list(datasetId)).map((r) => r.name)).not.toContain('bad-score');
  });

  it('takes every area as pycocotools does when the first detection has no box, with the split dropped', async () => {
    const file: Record<string, unknown>[] = results(1500);
    file[0] = { image_id: IMAGES[0], category_id: 1, score: 0.5 };
    const before = droppedSplits();
    const events = await importAll(write(file), 'no-first-box');
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    expect(droppedSplits()).toBe(before + 1);
    const rows = await rowsOf('no-first-box');
    // loadRes: without a box first, areas come from masks, and these detections have none.
    expect(rows.filter((r) => r.area !== null)).toEqual([]);
    expect(rows.map((r) => Number(r.position))).toEqual(file.map((_, i) => i));
    expect(rows.map((r) => r.score)).toEqual(file.map((d) => d.score));
  });

  it('reads a file whose cuts fall inside strings (a `},{` in a key it skips) as one tokenizer would', async () => {
    // Each result opens with the skipped key, so the first `}` `,` `{` after any split point is in a string.
    const file = results(1500).map((d) => ({ note: 'a},{"image_id": 1, "score": 0', ...d }));
    const before = droppedSplits();
    const events = await importAll(write(file), 'strings');
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    expect(droppedSplits()).toBe(before + 1);
    const rows = await rowsOf('strings');
    expect(rows.map((r) => [Number(r.position), Number(r.image_id), r.score])).toEqual(file.map((d, i) => [i, d.image_id, d.score]));
  });

  it('reads results read in place and results the token reader reads, mixed in every range, as one read', async () => {
    // Every 7th result has a polygon (the token reader's), the others are plain (read in place).
    const file = results(1500).map((d, i) => (i % 7 === 3 ? { ...d, segmentation: [[d.bbox[0], d.bbox[1], d.bbox[0] + 5, d.bbox[1], d.bbox[0], d.bbox[1] + 5]] } : d));
    const events = await importAll(write(file), 'mixed');
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    const rows = await rowsOf('mixed');
    expect(rows.map((r) => [Number(r.position), Number(r.image_id), Number(r.category_id), r.score, [r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h], r.area])).toEqual(
      file.map((d, i) => [i, d.image_id, d.category_id, d.score, d.bbox, d.bbox[2]! * d.bbox[3]!]),
    );
    const run = await env.dv.predictions.get(datasetId, 'mixed');
    const kinds = await env.dv.db.query(
      `SELECT ord - $3 AS position FROM annotations WHERE dataset_id = $1 AND label_set = $2 AND segmentation_kind = 'polygon' ORDER BY ord`,
      [datasetId, run.labelSet, run.ordBase],
    );
    expect(kinds.map((r) => Number(r.position))).toEqual(file.flatMap((_, i) => (i % 7 === 3 ? [i] : [])));
  });

  it('reports NaN boxes at their positions in the file', async () => {
    const file = results(1500);
    const text = JSON.stringify(file, null, 1).split('\n');
    // Boxes are printed one number a line: the box of detection k starts on the line after its "bbox".
    const bboxLines = text.flatMap((line, i) => (line.includes('"bbox"') ? [i] : []));
    for (const k of [10, 1100]) text[bboxLines[k]! + 1] = '  NaN,';
    const events = await importAll(write(text.join('\n')), 'nan');
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: file.length });
    expect(events.at(-1)!.warnings).toContainEqual(expect.objectContaining({ code: 'non_finite_bbox', count: 2, examples: [10, 1100] }));
  });
});
