import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Annotation, Sample } from '../../dist/services/datasets/samples.js';
import type { IngestEvent } from '../../dist/services/ingest/ingest.js';
import { startServer, type RunningServer } from '../../dist/server.js';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The Roboflow YOLOv8 export of shared/realdata, ingested as it is. Every expected value is read
 * from the files here, with a few lines of the test's own: the YAML's names by hand, each label
 * line split on spaces and scaled by the image's 640×640.
 */

const REPO = path.resolve(import.meta.dirname, '../..');
const RICE = path.resolve(REPO, '../shared/realdata/rice-pest-yolo-roboflow');
const present = fs.existsSync(path.join(RICE, 'data.yaml'));
if (!present) console.log(`yolo realdata tests skipped: ${RICE} is absent`);

const SPLITS = [['train', 'train'], ['val', 'valid'], ['test', 'test']] as const;

interface Line { cls: number; nums: number[] }

function labelLines(file: string): Line[] {
  return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => {
    const [c, ...rest] = l.split(/\s+/);
    return { cls: Number(c), nums: rest.map(Number) };
  });
}

/** What an annotation of a 640×640 image should be, from its line. */
function expected(line: Line) {
  const W = 640;
  const H = 640;
  if (line.nums.length === 4) {
    const [cx, cy, w, h] = line.nums as [number, number, number, number];
    return { kind: 'none', bbox: [(cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H], area: w * W * h * H, points: 0, polygon: null };
  }
  const xs = line.nums.filter((_, i) => i % 2 === 0).map((x) => x * W);
  const ys = line.nums.filter((_, i) => i % 2 === 1).map((y) => y * H);
  let twice = 0;
  for (let i = 0; i < xs.length; i++) {
    const j = (i + 1) % xs.length;
    twice += xs[i]! * ys[j]! - xs[j]! * ys[i]!;
  }
  const minX = Math.min(...xs);
  const minY = Math.min(...ys);
  return {
    kind: 'polygon', bbox: [minX, minY, Math.max(...xs) - minX, Math.max(...ys) - minY], area: Math.abs(twice) / 2, points: xs.length,
    polygon: xs.flatMap((x, i) => [x, ys[i]!]),
  };
}

describe.skipIf(!present)('YOLO reader on the rice-pest Roboflow export', () => {
  let env: TestEnv;
  let id: string;
  let complete: IngestEvent;
  let samples: Sample[];
  let annotations: Annotation[][];
  const realRoot = present ? fs.realpathSync(RICE) : RICE;

  beforeAll(async () => {
    env = await openTestEnv({ DATAVISOR_HOST: '127.0.0.1', DATAVISOR_PORT: '0' });
    const events = await ingestAll(env.dv, { annotationPath: path.join(RICE, 'data.yaml'), format: 'yolo', storeShapes: true });
    complete = events.at(-1)!;
    expect(complete.stage, complete.message).toBe('complete');
    id = complete.dataset_id!;
    samples = [];
    for (let after: number | null = null; ;) {
      const page = await env.dv.samples.page(id, {}, { kind: 'after', afterOrd: after, limit: 200 });
      samples.push(...page.samples);
      if (!page.hasMore) break;
      after = page.samples.at(-1)!.ord;
    }
    annotations = await env.dv.samples.annotationsOf(id, samples.map((s) => s.ord), { shapes: true });
  });
  afterAll(async () => {
    await env?.close();
  });

  it('is one dataset whose samples carry their split, in YAML order then path order, ids 0..n-1', async () => {
    const expectedNames: string[] = [];
    for (const [split, folder] of SPLITS) {
      const files = fs.readdirSync(path.join(RICE, 'dataset_split', folder, 'images')).sort();
      expectedNames.push(...files.map((f) => `${split}|${folder}/images/${f}`));
    }
    expect(samples.map((s) => `${s.split}|${s.fileName}`)).toEqual(expectedNames);
    expect(samples.map((s) => s.id)).toEqual(samples.map((_, i) => i));
    expect(samples.filter((s) => s.split === 'train')).toHaveLength(424);
    expect(samples.filter((s) => s.split === 'val')).toHaveLength(53);
    expect(samples.filter((s) => s.split === 'test')).toHaveLength(53);
    // Sizes from the headers; every file found in the image folder.
    expect(samples.every((s) => s.width === 640 && s.height === 640 && !s.fileMissing)).toBe(true);
    // labels.cache and the label .txt files are not samples.
    expect(samples.some((s) => !s.fileName.endsWith('.jpg'))).toBe(false);

    const ds = await env.dv.datasets.get(id);
    expect(ds.format).toBe('yolo');
    expect(ds.name).toBe('rice-pest-yolo-roboflow');
    expect(ds.imageDir).toBe(path.join(realRoot, 'dataset_split'));
    expect(ds.sourcePath).toBe(path.join(realRoot, 'data.yaml'));
    expect(complete.image_count).toBe(530);
    expect(complete.warnings).toEqual([]);
  });

  it('has the YAML names as categories, ids the class indices', async () => {
    const yaml = fs.readFileSync(path.join(RICE, 'data.yaml'), 'utf8').split('\n');
    const names = yaml.slice(yaml.indexOf('names:') + 1).filter((l) => l.startsWith('  - ')).map((l) => l.slice(4).trim());
    expect(names).toHaveLength(7);
    const cats = await env.dv.datasets.categories(id);
    expect(cats.map((c) => [c.categoryId, c.name])).toEqual(names.map((n, i) => [i, n]));
  });

  it('reads every label line: counts per split, boxes and polygons in pixels', () => {
    const perSplit: Record<string, number> = { train: 0, val: 0, test: 0 };
    let polygons = 0;
    samples.forEach((s, i) => {
      const labelFile = path.join(RICE, 'dataset_split', s.fileName.replace('/images/', '/labels/').replace(/\.jpg$/, '.txt'));
      const lines = labelLines(labelFile);
      const got = annotations[i]!;
      expect(got).toHaveLength(lines.length);
      perSplit[s.split!]! += lines.length;
      lines.forEach((line, k) => {
        const a = got[k]!;
        const e = expected(line);
        expect(a.categoryId).toBe(line.cls);
        expect(a.segmentationKind).toBe(e.kind);
        expect(a.pointCount).toBe(e.points);
        expect([a.bbox!.x, a.bbox!.y, a.bbox!.w, a.bbox!.h].map((v, j) => Math.abs(v - e.bbox[j]!) < 1e-6)).toEqual([true, true, true, true]);
        expect(a.area!).toBeCloseTo(e.area, 6);
        if (e.polygon) {
          polygons++;
          expect(a.polygonCount).toBe(1);
          const seg = a.segmentation as number[][];
          expect(seg).toHaveLength(1);
          expect(seg[0]!.map((v, j) => Math.abs(v - e.polygon![j]!) <= 0.005 + 1e-9).every(Boolean)).toBe(true);
        }
      });
    });
    expect(perSplit).toEqual({ train: 635, val: 62, test: 83 });
    expect(polygons).toBe(23);
    expect(complete.annotation_count).toBe(780);
  });

  it('annotation ids are 1..n in sample order', () => {
    const ids = annotations.flat().map((a) => a.id);
    expect(ids).toEqual(ids.map((_, i) => i + 1));
  });

  it('the folder holding data.yaml is the same dataset, and REST serves its splits', async () => {
    const events = await ingestAll(env.dv, { annotationPath: RICE, format: 'yolo' });
    const last = events.at(-1)!;
    expect(last.stage, last.message).toBe('complete');
    expect([last.image_count, last.annotation_count, last.category_count]).toEqual([530, 780, 7]);
    const server: RunningServer = await startServer(env.dv);
    try {
      const base = server.url;
      const res = await fetch(`${base}/samples?dataset_id=${last.dataset_id}&split=val&limit=200`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { total: number; items: { file_name: string; split: string; width: number }[] };
      expect(body.total).toBe(53);
      expect(body.items.every((s) => s.split === 'val' && s.file_name.startsWith('valid/images/') && s.width === 640)).toBe(true);
      // Originals are served from the chosen image folder by their relative file name.
      const img = await fetch(`${base}/images/${last.dataset_id}/0?size=original`);
      expect(img.status).toBe(200);
      expect(Buffer.from(await img.arrayBuffer()).equals(fs.readFileSync(path.join(RICE, 'dataset_split', samples[0]!.fileName)))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
