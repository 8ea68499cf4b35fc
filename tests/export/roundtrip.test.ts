import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { dataRoots, DEMO, RBC, readJson, RICE_PEST_YOLO } from '../helpers/fixtures.js';

/**
 * Round trips through the CLI, as a user runs them: a file is ingested, exported with
 * `datavisor export`, and the export is checked against the ORIGINAL file (read here as plain
 * JSON, or for YOLO from the label files and the images' headers), then ingested again.
 */

const BIN = path.resolve(import.meta.dirname, '../../bin/datavisor.js');
let dir: string;
let env: NodeJS.ProcessEnv;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
const cli = (args: string[]): Promise<Run> =>
  promisify(execFile)(process.execPath, [BIN, ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: Run) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

async function ok(args: string[]): Promise<Run> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`datavisor ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}

async function ingest(args: string[]): Promise<string> {
  const r = await ok(['ingest', '--json', ...args]);
  return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { dataset_id: string }).dataset_id;
}

async function exportJson<T = Coco>(args: string[]): Promise<{ json: T; run: Run; file: string }> {
  const file = path.join(dir, `export-${Math.random().toString(36).slice(2)}.json`);
  const run = await ok(['export', ...args, '--out', file]);
  return { json: readJson<T>(file), run, file };
}

interface Coco {
  info?: unknown;
  licenses: unknown[];
  images: { id: number; file_name: string; width: number; height: number; [k: string]: unknown }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number; segmentation: unknown; [k: string]: unknown }[];
  categories: { id: number; name: string; supercategory?: string }[];
}

const byId = <T extends { id: number }>(xs: T[]) => [...xs].sort((a, b) => a.id - b.id);

beforeAll(() => {
  dir = fs.realpathSync(tempDir('dv-export-'));
  fs.mkdirSync(path.join(dir, 'plugins'));
  env = {
    ...process.env,
    DATAVISOR_DB_PATH: path.join(dir, 'db.duckdb'),
    DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'),
    DATAVISOR_PLUGIN_DIR: path.join(dir, 'plugins'),
    DATAVISOR_DATA_ROOTS: dataRoots(dir),
    DATAVISOR_THUMBNAILS_ON_INGEST: '0',
  };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('COCO → DataVisor → COCO → DataVisor', () => {
  it('keeps the RBC export: info, licenses, categories, image and annotation ids, boxes and areas exactly', async () => {
    const original = readJson<Coco>(RBC('valid').annotations);
    await ingest(['--name', 'rbc-valid', RBC('valid').annotations, RBC('valid').images]);
    const { json: exported, file } = await exportJson(['rbc-valid']);

    expect(exported.info).toEqual(original.info);
    expect(exported.licenses).toEqual(original.licenses);
    expect(byId(exported.categories)).toEqual(byId(original.categories));
    expect(byId(exported.images)).toEqual(byId(original.images));
    // Every key of every annotation (ids, box, area, iscrowd, the empty segmentation), in the file's order.
    expect(exported.annotations).toEqual(original.annotations);

    // The export ingests again into the same dataset, and exports the same text.
    await ingest(['--name', 'rbc-again', file, RBC('valid').images]);
    const again = await exportJson(['rbc-again']);
    expect(fs.readFileSync(again.file, 'utf8')).toBe(fs.readFileSync(file, 'utf8'));
  });

  it('keeps the demo dataset ingested with --shapes: polygons, the crowd RLE, gapped ids, categories last', async () => {
    const original = readJson<Coco>(DEMO.annotations);
    await ingest(['--name', 'demo-shapes', '--shapes', DEMO.annotations, DEMO.images]);
    const { json: exported, run } = await exportJson(['demo-shapes']);
    expect(run.stderr).toBe('');
    expect(exported.info).toEqual(original.info);
    expect(exported.licenses).toEqual(original.licenses);
    expect(byId(exported.categories)).toEqual(byId(original.categories));
    expect(byId(exported.images)).toEqual(byId(original.images));
    expect(exported.annotations).toEqual(original.annotations);
    expect(exported.annotations.some((a) => a.iscrowd === 1 && !Array.isArray(a.segmentation))).toBe(true);
  });

  it('without stored shapes, writes segmentation [] and says how many it could not keep', async () => {
    const original = readJson<Coco>(DEMO.annotations);
    await ingest(['--name', 'demo-boxes', DEMO.annotations, DEMO.images]);
    const { json: exported, run } = await exportJson(['demo-boxes']);
    const withShapes = original.annotations.filter((a) => !(Array.isArray(a.segmentation) && a.segmentation.length === 0)).length;
    expect(withShapes).toBeGreaterThan(0);
    expect(run.stderr).toBe(`datavisor: warning: ${withShapes} annotation(s) had a polygon, RLE mask or keypoints that the ingest did not store (ingest with --shapes or DATAVISOR_STORE_SHAPES=1 to keep them): they are written with "segmentation": [] and without "keypoints"\n`);
    expect(exported.annotations.every((a) => Array.isArray(a.segmentation) && a.segmentation.length === 0)).toBe(true);
    const strip = ({ segmentation: _, ...rest }: Coco['annotations'][number]) => rest;
    expect(exported.annotations.map(strip)).toEqual(original.annotations.map(strip));
  });
});

describe('YOLO → DataVisor → COCO', () => {
  it('gives each label line\'s box in pixels of its image (from the .txt and the image header, here)', async () => {
    await ingest(['--name', 'rice', '--format', 'yolo', path.join(RICE_PEST_YOLO, 'data.yaml')]);
    const { json: exported } = await exportJson(['rice']);
    // The oracle: every label file, its image's size read by sharp (not the reader's image-size).
    const expected: { file: string; category: number; box: number[] }[] = [];
    for (const split of ['train', 'valid', 'test']) {
      const images = path.join(RICE_PEST_YOLO, 'dataset_split', split, 'images');
      for (const name of fs.readdirSync(images).sort()) {
        const { width: W, height: H } = await sharp(path.join(images, name)).metadata();
        const label = path.join(RICE_PEST_YOLO, 'dataset_split', split, 'labels', name.replace(/\.[^.]+$/, '.txt'));
        for (const line of fs.readFileSync(label, 'utf8').split('\n').filter((l) => l.trim() !== '')) {
          const [cls, ...v] = line.trim().split(/\s+/).map(Number);
          let box: number[];
          if (v.length === 4) {
            const [cx, cy, w, h] = v as [number, number, number, number];
            box = [(cx - w / 2) * W!, (cy - h / 2) * H!, w * W!, h * H!];
          } else {
            const xs = v.filter((_, i) => i % 2 === 0).map((x) => x * W!);
            const ys = v.filter((_, i) => i % 2 === 1).map((y) => y * H!);
            box = [Math.min(...xs), Math.min(...ys), Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)];
          }
          expected.push({ file: name, category: cls!, box });
        }
      }
    }
    const fileOf = new Map(exported.images.map((i) => [i.id, path.basename(i.file_name)]));
    const got = exported.annotations.map((a) => ({ file: fileOf.get(a.image_id)!, category: a.category_id, box: a.bbox }));
    const key = (x: { file: string; box: number[] }) => `${x.file} ${x.box.map((b) => b.toFixed(6)).join(' ')}`;
    got.sort((a, b) => key(a).localeCompare(key(b)));
    expected.sort((a, b) => key(a).localeCompare(key(b)));
    expect(got.length).toBe(expected.length);
    got.forEach((g, i) => {
      expect(g.file).toBe(expected[i]!.file);
      expect(g.category).toBe(expected[i]!.category);
      g.box.forEach((b, k) => expect(Math.abs(b - expected[i]!.box[k]!)).toBeLessThan(1e-9));
    });
    // Categories are the names, in class order.
    const names = readYamlNames(path.join(RICE_PEST_YOLO, 'data.yaml'));
    expect(byId(exported.categories).map((c) => [c.id, c.name])).toEqual(names.map((n, i) => [i, n]));
  });
});

/** The names list of the fixture's data.yaml (a `- name` line each), read without the YAML library the reader uses. */
function readYamlNames(file: string): string[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return lines.slice(lines.findIndex((l) => l.startsWith('names:')) + 1).filter((l) => /^\s+- /.test(l)).map((l) => l.replace(/^\s+- /, '').trim());
}

describe('predictions → results file', () => {
  it('exports the run\'s detections as the results file had them, in its order', async () => {
    const gt = readJson<Coco>(RBC('test').annotations);
    await ingest(['--name', 'rbc-test', RBC('test').annotations, RBC('test').images]);
    // Scores and boxes that only an exact double round trip keeps; image order not sorted.
    const results = gt.annotations
      .slice(0, 40)
      .reverse()
      .map((a, i) => ({ image_id: a.image_id, category_id: a.category_id, bbox: [a.bbox[0]! + 0.1 + 0.2, a.bbox[1]! / 3, a.bbox[2]!, a.bbox[3]! * 1.1], score: 1 / (i + 3) }));
    const file = path.join(dir, 'results.json');
    fs.writeFileSync(file, JSON.stringify(results));
    await ok(['predictions', 'import', 'rbc-test', file, '--name', 'model-a']);
    const { json } = await exportJson<typeof results>(['rbc-test', '--predictions', 'model-a']);
    expect(json).toEqual(results);

    const unknown = await cli(['export', 'rbc-test', '--predictions', 'nope', '--out', path.join(dir, 'x.json')]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/^datavisor: prediction run of dataset [a-z0-9]{16} "nope" does not exist\n$/);
    expect(fs.existsSync(path.join(dir, 'x.json'))).toBe(false);
  });
});

describe('filtered exports', () => {
  it('a split or a category exports exactly the matching samples; --category keeps that category\'s annotations unless --all-annotations', async () => {
    const valid = readJson<Coco>(RBC('valid').annotations);
    const test = readJson<Coco>(RBC('test').annotations);
    // One dataset of two splits: the test file ingested on its own with its split, then both compared.
    await ingest(['--name', 'rbc-split', '--split', 'test', RBC('test').annotations, RBC('test').images]);
    const split = await exportJson(['rbc-split', '--split', 'test']);
    expect(split.json.images.map((i) => i.id).sort()).toEqual(test.images.map((i) => i.id).sort());
    const none = await exportJson(['rbc-split', '--split', 'valid']);
    expect(none.json.images).toEqual([]);
    expect(none.json.annotations).toEqual([]);

    const wbc = valid.categories.find((c) => c.name === 'wbc')!;
    const wbcImages = new Set(valid.annotations.filter((a) => a.category_id === wbc.id).map((a) => a.image_id));
    const sub = await exportJson(['rbc-valid', '--category', 'wbc']);
    expect(sub.json.images.map((i) => i.id).sort()).toEqual([...wbcImages].sort());
    expect(sub.json.annotations).toEqual(valid.annotations.filter((a) => a.category_id === wbc.id));
    expect(sub.json.categories).toEqual([wbc]);

    const all = await exportJson(['rbc-valid', '--category', 'wbc', '--all-annotations']);
    expect(all.json.images.map((i) => i.id).sort()).toEqual([...wbcImages].sort());
    expect(all.json.annotations).toEqual(valid.annotations.filter((a) => wbcImages.has(a.image_id)));
    expect(byId(all.json.categories)).toEqual(byId(valid.categories));
  });

  it('refuses a missing output folder and an unknown dataset in one line, writing nothing', async () => {
    const missing = await cli(['export', 'rbc-valid', '--out', path.join(dir, 'no', 'such', 'x.json')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toBe(`datavisor: --out: the folder ${path.join(dir, 'no', 'such')} does not exist; create it first\n`);
    const unknown = await cli(['export', 'no-such-dataset', '--out', path.join(dir, 'y.json')]);
    expect(unknown.stderr).toBe('datavisor: dataset "no-such-dataset" does not exist\n');
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp') || f === 'y.json')).toEqual([]);
  });
});

describe('DataVisor → YOLO → DataVisor', () => {
  it('the RBC export as a YOLO folder: linked images, one label line per box, and an ingest of it gives the same boxes', async () => {
    const original = readJson<Coco>(RBC('valid').annotations);
    const out = path.join(dir, 'rbc-yolo');
    const run = await ok(['export', 'rbc-valid', '--format', 'yolo', '--out', out]);
    expect(run.stdout).toBe(`wrote ${out}: ${original.images.length} images, ${original.annotations.length} boxes\n`);
    const classes = byId(original.categories).map((c) => c.id);
    for (const image of original.images) {
      const link = path.join(out, 'images', 'train', image.file_name);
      expect(fs.readlinkSync(link)).toBe(path.join(RBC('valid').images, image.file_name));
      const lines = fs.readFileSync(path.join(out, 'labels', 'train', image.file_name.replace(/\.jpg$/, '.txt')), 'utf8').split('\n').filter(Boolean);
      const expected = original.annotations.filter((a) => a.image_id === image.id);
      expect(lines.length).toBe(expected.length);
      lines.forEach((line, i) => {
        const [cls, cx, cy, w, h] = line.split(' ').map(Number) as [number, number, number, number, number];
        const [x, y, bw, bh] = expected[i]!.bbox as [number, number, number, number];
        expect(cls).toBe(classes.indexOf(expected[i]!.category_id));
        for (const [got, want] of [[cx, (x + bw / 2) / image.width], [cy, (y + bh / 2) / image.height], [w, bw / image.width], [h, bh / image.height]]) {
          expect(Math.abs(got! - want!)).toBeLessThan(1e-12);
        }
      });
    }
    await ingest(['--name', 'rbc-from-yolo', '--format', 'yolo', path.join(out, 'data.yaml')]);
    const { json: again } = await exportJson(['rbc-from-yolo']);
    const boxes = (c: Coco) => {
      const name = new Map(c.images.map((i) => [i.id, path.basename(i.file_name)]));
      const key = (x: { file: string; box: number[] }) => `${x.file} ${x.box.map((b) => b.toFixed(6)).join(' ')}`;
      return c.annotations.map((a) => ({ file: name.get(a.image_id)!, box: a.bbox })).sort((p, q) => key(p).localeCompare(key(q)));
    };
    const want = boxes(original);
    const got = boxes(again);
    expect(got.map((g) => g.file)).toEqual(want.map((w) => w.file));
    got.forEach((g, i) => g.box.forEach((b, k) => expect(Math.abs(b - want[i]!.box[k]!)).toBeLessThan(1e-9)));
  });

  it('the rice-pest YOLO dataset exported as YOLO keeps its splits and boxes; a folder that exists is refused', async () => {
    const out = path.join(dir, 'rice-yolo');
    await ok(['export', 'rice', '--format', 'yolo', '--out', out, '--copy']);
    expect(fs.readdirSync(path.join(out, 'images')).sort()).toEqual(['test', 'train', 'val']);
    expect(fs.lstatSync(path.join(out, 'images', 'test', fs.readdirSync(path.join(out, 'images', 'test'))[0]!)).isFile()).toBe(true);
    await ingest(['--name', 'rice-again', '--format', 'yolo', path.join(out, 'data.yaml')]);
    const first = (await exportJson(['rice'])).json;
    const second = (await exportJson(['rice-again'])).json;
    const boxes = (c: Coco) => {
      const name = new Map(c.images.map((i) => [i.id, path.basename(i.file_name)]));
      return c.annotations.map((a) => `${name.get(a.image_id)} ${a.category_id} ${a.bbox.map((b) => b.toFixed(6)).join(' ')}`).sort();
    };
    expect(boxes(second)).toEqual(boxes(first));
    expect(second.categories).toEqual(first.categories);

    const again = await cli(['export', 'rice', '--format', 'yolo', '--out', out]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toBe(`datavisor: --out: ${out} exists; name a folder that does not exist yet (the export creates it)\n`);
  });
});
