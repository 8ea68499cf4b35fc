import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type DemoDataset, generateDemoDataset } from '../src/demo/index.js';

interface ImageRecord {
  id: number;
  file_name: string;
  width: number;
  height: number;
  license: number;
  date_captured: string;
}
interface AnnotationRecord {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  segmentation: number[][] | { counts: number[]; size: [number, number] };
}
interface Coco {
  info: Record<string, unknown>;
  licenses: { id: number }[];
  images: ImageRecord[];
  annotations: AnnotationRecord[];
  categories: { id: number; name: string; supercategory: string }[];
}

const OPTIONS = { images: 24, seed: 7 };
const SLOW = 60_000;

let root: string;
let demo: DemoDataset;
let coco: Coco;

const sha256 = async (file: string) => createHash('sha256').update(await fs.readFile(file)).digest('hex');

async function mtimes(d: DemoDataset): Promise<number[]> {
  const names = (await fs.readdir(d.imageDir)).sort();
  const files = [d.annotationPath, ...names.map((n) => path.join(d.imageDir, n))];
  return Promise.all(files.map(async (f) => (await fs.stat(f)).mtimeMs));
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'datavisor-demo-'));
  demo = await generateDemoDataset(path.join(root, 'demo'), OPTIONS);
  coco = JSON.parse(await fs.readFile(demo.annotationPath, 'utf8')) as Coco;
}, SLOW);

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('generateDemoDataset output', () => {
  test('is a COCO instances file with categories last, as COCO publishes it', () => {
    expect(Object.keys(coco)).toEqual(['info', 'licenses', 'images', 'annotations', 'categories']);
    expect(demo).toEqual({
      annotationPath: path.join(root, 'demo', 'annotations.json'),
      imageDir: path.join(root, 'demo', 'images'),
      imageCount: 24,
      annotationCount: coco.annotations.length,
    });
    expect(coco.images).toHaveLength(24);
    expect(coco.categories.length).toBeGreaterThanOrEqual(6);
    for (const c of coco.categories) expect(c.supercategory).toEqual(expect.any(String));
  });

  test('every image exists as a JPEG of the declared size', async () => {
    for (const image of coco.images) {
      expect(image.file_name).toMatch(/^demo_\d{6}\.jpg$/);
      const meta = await sharp(path.join(demo.imageDir, image.file_name)).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', image.width, image.height]);
    }
    expect(new Set(coco.images.map((i) => `${i.width}x${i.height}`)).size).toBeGreaterThan(1);
  });

  test('ids are unique, kept as written (not from 1) and every reference resolves', () => {
    const imageIds = coco.images.map((i) => i.id);
    const annotationIds = coco.annotations.map((a) => a.id);
    const categoryIds = new Set(coco.categories.map((c) => c.id));
    expect(new Set(imageIds).size).toBe(imageIds.length);
    expect(new Set(annotationIds).size).toBe(annotationIds.length);
    expect(categoryIds.size).toBe(coco.categories.length);
    expect(Math.min(...imageIds)).toBeGreaterThan(1);
    const licenseIds = new Set(coco.licenses.map((l) => l.id));
    for (const image of coco.images) expect(licenseIds.has(image.license)).toBe(true);
    for (const a of coco.annotations) {
      expect(imageIds).toContain(a.image_id);
      expect(categoryIds.has(a.category_id)).toBe(true);
    }
  });

  test('boxes lie inside their image, areas fit their boxes, polygons span their boxes', () => {
    const images = new Map(coco.images.map((i) => [i.id, i]));
    for (const a of coco.annotations) {
      const image = images.get(a.image_id)!;
      const [x, y, w, h] = a.bbox;
      expect(x).toBeGreaterThanOrEqual(0);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(w).toBeGreaterThan(0);
      expect(h).toBeGreaterThan(0);
      expect(x + w).toBeLessThanOrEqual(image.width);
      expect(y + h).toBeLessThanOrEqual(image.height);
      expect(a.area).toBeGreaterThan(0);
      expect(a.area).toBeLessThanOrEqual(w * h);
      if (a.iscrowd === 0) {
        const points = (a.segmentation as number[][])[0]!;
        const xs = points.filter((_, i) => i % 2 === 0);
        const ys = points.filter((_, i) => i % 2 === 1);
        expect(Math.min(...xs)).toBeCloseTo(x, 6);
        expect(Math.min(...ys)).toBeCloseTo(y, 6);
        expect(Math.max(...xs)).toBeCloseTo(x + w, 6);
        expect(Math.max(...ys)).toBeCloseTo(y + h, 6);
      }
    }
  });

  test('crowd annotations carry an uncompressed RLE covering their whole image', () => {
    const images = new Map(coco.images.map((i) => [i.id, i]));
    const crowds = coco.annotations.filter((a) => a.iscrowd === 1);
    expect(crowds.length).toBeGreaterThanOrEqual(1);
    for (const a of crowds) {
      const image = images.get(a.image_id)!;
      const rle = a.segmentation as { counts: number[]; size: [number, number] };
      expect(rle.size).toEqual([image.height, image.width]);
      expect(rle.counts.reduce((s, n) => s + n, 0)).toBe(image.width * image.height);
      const foreground = rle.counts.filter((_, i) => i % 2 === 1).reduce((s, n) => s + n, 0);
      expect(foreground).toBe(a.area);
    }
  });

  test('has images without annotations and images with several', () => {
    const perImage = new Map(coco.images.map((i) => [i.id, 0]));
    for (const a of coco.annotations) perImage.set(a.image_id, perImage.get(a.image_id)! + 1);
    const counts = [...perImage.values()];
    expect(counts.filter((n) => n === 0).length).toBeGreaterThanOrEqual(1);
    expect(Math.max(...counts)).toBeGreaterThan(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(7); // up to 6 shapes, plus a crowd
  });
});

describe('generateDemoDataset reuse and determinism', () => {
  test('a second call reuses the complete dataset without rewriting it', async () => {
    const before = await mtimes(demo);
    const again = await generateDemoDataset(path.join(root, 'demo'), OPTIONS);
    expect(again).toEqual(demo);
    expect(await mtimes(demo)).toEqual(before);
  });

  test('the same options give byte-identical files in another folder', async () => {
    const twin = await generateDemoDataset(path.join(root, 'twin'), OPTIONS);
    expect(twin.annotationCount).toBe(demo.annotationCount);
    expect(await sha256(twin.annotationPath)).toBe(await sha256(demo.annotationPath));
    for (const image of coco.images.slice(0, 6)) {
      expect(await sha256(path.join(twin.imageDir, image.file_name))).toBe(
        await sha256(path.join(demo.imageDir, image.file_name)),
      );
    }
  }, SLOW);

  test('an incomplete leftover folder (no marker) and a dead run\'s temp folder are replaced', async () => {
    const dir = path.join(root, 'leftover');
    await fs.mkdir(path.join(dir, 'images'), { recursive: true });
    // No process has this pid (Linux caps pids at 2^22), like a generator that crashed.
    await fs.mkdir(path.join(root, '.leftover.tmp-999999999-0badcafe', 'images'), { recursive: true });
    await fs.writeFile(path.join(dir, 'annotations.json'), '{"info": {');
    await fs.writeFile(path.join(dir, 'images', 'demo_000001.jpg'), 'half a jpeg');
    const fresh = await generateDemoDataset(dir, OPTIONS);
    expect(await sha256(fresh.annotationPath)).toBe(await sha256(demo.annotationPath));
    expect(await sha256(path.join(fresh.imageDir, 'demo_000001.jpg'))).toBe(
      await sha256(path.join(demo.imageDir, 'demo_000001.jpg')),
    );
    expect((await fs.readdir(root)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  }, SLOW);

  test('a dataset made with other options is regenerated', async () => {
    const dir = path.join(root, 'reseeded');
    const small = await generateDemoDataset(dir, { images: 3, seed: 1 });
    const bigger = await generateDemoDataset(dir, { images: 5, seed: 1 });
    expect([small.imageCount, bigger.imageCount]).toEqual([3, 5]);
    expect(await fs.readdir(bigger.imageDir)).toHaveLength(5);
  }, SLOW);

  test('a folder holding other files is refused and left untouched', async () => {
    const dir = path.join(root, 'user-folder');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'thesis.tex'), 'precious');
    await expect(generateDemoDataset(dir, { images: 2 })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await fs.readFile(path.join(dir, 'thesis.tex'), 'utf8')).toBe('precious');
    expect((await fs.readdir(root)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  }, SLOW);

  test('rejects a bad image count before touching the disk', async () => {
    const dir = path.join(root, 'never');
    await expect(generateDemoDataset(dir, { images: 0 })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(fs.stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
