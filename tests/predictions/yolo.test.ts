import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImportRequest } from '../../dist/services/predictions/predictions.js';
import { importAll as importEvents, ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';
import { RICE_PEST_YOLO } from '../helpers/fixtures.js';

/**
 * YOLO predictions (`yolo predict save_txt save_conf`: one `class cx cy w h conf` file per image)
 * imported as a prediction run of the committed rice-pest YOLO export. The expected pixel boxes are
 * computed here from the fixture's label files and image sizes read with sharp (the reader uses
 * image-size), and evaluated: predictions equal to the ground truth score AP 1.
 */

interface Image {
  split: string;
  stem: string;
  width: number;
  height: number;
  /** The ground truth's lines: class and normalised box. */
  labels: number[][];
}

let env: TestEnv;
let datasetId: string;
let images: Image[];
let n = 0;

beforeAll(async () => {
  env = await openTestEnv();
  images = [];
  for (const split of ['train', 'valid', 'test']) {
    const dir = path.join(RICE_PEST_YOLO, 'dataset_split', split);
    for (const file of fs.readdirSync(path.join(dir, 'images')).sort()) {
      const stem = file.replace(/\.[^.]*$/, '');
      const meta = await sharp(path.join(dir, 'images', file)).metadata();
      const swap = (meta.orientation ?? 1) >= 5;
      const labelFile = path.join(dir, 'labels', `${stem}.txt`);
      const labels = fs.existsSync(labelFile)
        ? fs.readFileSync(labelFile, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => asBox(l.trim().split(/\s+/).map(Number)))
        : [];
      images.push({ split, stem, width: swap ? meta.height! : meta.width!, height: swap ? meta.width! : meta.height!, labels });
    }
  }
  const done = (await ingestAll(env.dv, { annotationPath: path.join(RICE_PEST_YOLO, 'data.yaml'), format: 'yolo' })).at(-1)!;
  expect(done.stage).toBe('complete');
  datasetId = done.dataset_id!;
});
afterAll(() => env?.close());

/** A label line as `class cx cy w h`: a polygon line (`class x1 y1 x2 y2 …`) by its extent. */
function asBox([c, ...v]: number[]): number[] {
  if (v.length === 4) return [c!, ...v];
  const xs = v.filter((_, i) => i % 2 === 0);
  const ys = v.filter((_, i) => i % 2 === 1);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  return [c!, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0];
}

/** A predictions folder: file name → lines. */
function folder(files: Record<string, string[]>, sub = ''): string {
  const dir = path.join(env.dir, `preds-${n++}`);
  fs.mkdirSync(path.join(dir, sub), { recursive: true });
  for (const [name, lines] of Object.entries(files)) fs.writeFileSync(path.join(dir, sub, name), lines.map((l) => `${l}\n`).join(''));
  return dir;
}

const importAll = (req: Omit<ImportRequest, 'datasetId'>) => importEvents(env.dv, { datasetId, ...req });

const runCount = async () => (await env.dv.predictions.list(datasetId)).length;

describe('importing YOLO predictions', () => {
  it('matches files to samples by stem, turns boxes into pixels with the class as category, and evaluates', async () => {
    // The ground truth with a confidence, in reverse line order, plus one low-scoring miss per image.
    const files: Record<string, string[]> = {};
    const expected: { stem: string; category: number; box: number[]; score: number }[] = [];
    for (const img of images.filter((i) => i.labels.length > 0)) {
      const lines = img.labels.map((l, i) => ({ l, score: 0.9 - (0.4 * i) / img.labels.length })).reverse();
      lines.push({ l: [img.labels[0]![0]!, 0.1, 0.1, 0.05, 0.05], score: 0.01 });
      files[`${img.stem}.txt`] = lines.map(({ l, score }) => `${l.join(' ')} ${score}`);
      for (const { l, score } of lines) {
        const [c, cx, cy, w, h] = l as [number, number, number, number, number];
        expected.push({ stem: img.stem, category: c, box: [(cx - w / 2) * img.width, (cy - h / 2) * img.height, w * img.width, h * img.height], score });
      }
    }
    const events = await importAll({ resultsPath: folder(files), name: 'yolo-gt' });
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: expected.length });
    const [run] = await env.dv.predictions.list(datasetId);
    const rows = await env.dv.db.query(
      `SELECT a.ord - $3 AS position, s.file_name, a.category_id, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area, a.score
       FROM annotations a JOIN samples s ON s.dataset_id = a.dataset_id AND s.ord = a.sample_ord
       WHERE a.dataset_id = $1 AND a.label_set = $2 ORDER BY a.ord`,
      [datasetId, run!.labelSet, run!.ordBase],
    );
    // Files in name order, lines in file order: the position of each prediction.
    const order = expected.map((e, i) => ({ e, i })).sort((a, b) => (a.e.stem < b.e.stem ? -1 : a.e.stem > b.e.stem ? 1 : a.i - b.i)).map((x) => x.e);
    expect(rows.map((r) => r.position)).toEqual(order.map((_, i) => i));
    rows.forEach((r, i) => {
      const e = order[i]!;
      expect(path.basename(r.file_name as string).startsWith(`${e.stem}.`)).toBe(true);
      expect([r.category_id, r.score]).toEqual([e.category, e.score]);
      [r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h].forEach((v, k) => expect(v as number).toBeCloseTo(e.box[k]!, 6));
      expect(r.area as number).toBeCloseTo(e.box[2]! * e.box[3]!, 4);
    });
    const evaluation = await env.dv.evaluations.evaluate({ datasetId, predictions: 'yolo-gt' });
    // Every prediction is its ground truth's box (plus a low-scoring miss ranked below them all), so
    // every category with ground truth has AP 1: no object is left unrecallable (the ingest numbers
    // annotation ids from 1; pycocotools never counts a match to a GT of id 0 as a true positive).
    const withGt = new Set(images.flatMap((i) => i.labels.map((l) => l[0])));
    const scored = evaluation.perCategory.filter((c) => withGt.has(c.category_id));
    expect(scored.map((c) => c.category_id).sort((a, b) => a - b)).toEqual([...withGt].sort((a, b) => a! - b!));
    for (const c of scored) {
      expect(c.ap50).toBeCloseTo(1, 12);
      expect(c.ap).toBeCloseTo(1, 12);
    }
  });

  it('reads the labels/ folder of a predict run, and only the split given (the YAML\'s key)', async () => {
    const valid = images.find((i) => i.split === 'valid' && i.labels.length > 0)!;
    const train = images.find((i) => i.split === 'train' && i.labels.length > 0)!;
    const dir = folder({ [`${valid.stem}.txt`]: ['0 0.5 0.5 0.2 0.2 0.7'] }, 'labels');
    const done = (await importAll({ resultsPath: dir, name: 'labels-dir', format: 'yolo', split: 'val' })).at(-1)!;
    expect(done).toMatchObject({ stage: 'complete', prediction_count: 1 });
    const other = (await importAll({ resultsPath: folder({ [`${train.stem}.txt`]: ['0 0.5 0.5 0.2 0.2 0.7'] }), name: 'wrong-split', split: 'val' })).at(-1)!;
    expect(other).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
    expect(other.message).toContain(`${train.stem}.txt`);
    expect(other.message).toContain('split "val"');
    const noSplit = (await importAll({ resultsPath: dir, name: 'x', split: 'holdout' })).at(-1)!;
    expect(noSplit).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    expect(noSplit.message).toMatch(/no split "holdout"; its splits are "test", "train", "val"/);
  });

  it('refuses a line without a confidence, an unknown class and a wrong format with file:line, leaving nothing behind', async () => {
    const img = images.find((i) => i.labels.length > 0)!;
    const before = await runCount();
    const noConf = (await importAll({ resultsPath: folder({ [`${img.stem}.txt`]: ['0 0.5 0.5 0.2 0.2 0.5', '1 0.5 0.5 0.2 0.2'] }), name: 'bad' })).at(-1)!;
    expect(noConf).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
    expect(noConf.message).toContain(`${img.stem}.txt:2 has no confidence`);
    const badClass = (await importAll({ resultsPath: folder({ [`${img.stem}.txt`]: ['0 0.5 0.5 0.2 0.2 0.5', '42 0.5 0.5 0.2 0.2 0.5'] }), name: 'bad' })).at(-1)!;
    expect(badClass).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
    expect(badClass.message).toContain(`class 42 at ${img.stem}.txt:2`);
    const unknown = (await importAll({ resultsPath: folder({ 'not-an-image.txt': ['0 0.5 0.5 0.2 0.2 0.5'] }), name: 'bad' })).at(-1)!;
    expect(unknown).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
    const file = path.join(env.dir, 'one.txt');
    fs.writeFileSync(file, '0 0.5 0.5 0.2 0.2 0.5\n');
    const notFolder = (await importAll({ resultsPath: file, name: 'bad', format: 'yolo' })).at(-1)!;
    expect(notFolder).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    const empty = (await importAll({ resultsPath: folder({}), name: 'bad' })).at(-1)!;
    expect(empty).toMatchObject({ stage: 'error', code: 'BAD_USER_INPUT' });
    expect(await runCount()).toBe(before);
    const staging = await env.dv.db.query(`SELECT count(*) AS n FROM duckdb_tables() WHERE table_name LIKE 'staging_%'`);
    expect(Number(staging[0]!.n)).toBe(0);
  });
});
