import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { boxIou } from '../../dist/services/evaluation/box-iou.js';
import {
  maskIou,
  rleArea,
  rleDecode,
  rleEncode,
  rleFromBbox,
  rleFromCounts,
  rleFromPolygon,
  rleFromPolygons,
  rleFromString,
  rleMerge,
  rleToBbox,
  rleToString,
  type Rle,
} from '../../dist/services/evaluation/mask.js';

const CASES = path.resolve(import.meta.dirname, '../fixtures/eval-reference/cases');
const readJson = <T>(...parts: string[]): T => JSON.parse(fs.readFileSync(path.join(CASES, ...parts), 'utf8')) as T;

interface Segmented {
  bbox: number[];
  area: number;
  iscrowd?: number;
  segmentation: { size: [number, number]; counts: number[] | string };
}

/** Column-major pixels set where `inside(x, y)`. */
function pixels(h: number, w: number, inside: (x: number, y: number) => boolean): Uint8Array {
  const m = new Uint8Array(h * w);
  for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) m[x * h + y] = inside(x, y) ? 1 : 0;
  return m;
}

const rect = (x0: number, y0: number, x1: number, y1: number) => (x: number, y: number) => x >= x0 && x < x1 && y >= y0 && y < y1;

describe('polygons on cocoapi pixel grid', () => {
  it('fills an integer rectangle exactly: columns x0..x1-1, rows y0..y1-1', () => {
    const rle = rleFromPolygon([3, 2, 9, 2, 9, 7, 3, 7], 10, 12);
    expect(rleDecode(rle)).toEqual(pixels(10, 12, rect(3, 2, 9, 7)));
    expect(rleArea(rle)).toBe(30);
    expect(rleToBbox(rle)).toEqual([3, 2, 6, 5]);
  });

  it('keeps only the pixels whose centre is strictly inside a small triangle', () => {
    // (0,0) (4,0) (0,4): centres (x+0.5, y+0.5) with x + y + 1 < 4; those on the hypotenuse are out.
    const rle = rleFromPolygon([0, 0, 4, 0, 0, 4], 6, 6);
    expect(rleDecode(rle)).toEqual(pixels(6, 6, (x, y) => x + y <= 2));
    expect(rleArea(rle)).toBe(6);
  });

  it('ORs the parts of an object (case 06, GT 2: two squares)', () => {
    const gt = readJson<{ annotations: { id: number; segmentation: number[][] }[] }>('06-segm-crowd-polygons', 'gt.json');
    const parts = gt.annotations.find((a) => a.id === 2)!.segmentation;
    const rle = rleFromPolygons(parts, 150, 200);
    expect(rleDecode(rle)).toEqual(pixels(150, 200, (x, y) => rect(100, 20, 140, 60)(x, y) || rect(150, 70, 180, 100)(x, y)));
    expect(rleArea(rle)).toBe(40 * 40 + 30 * 30);
  });

  it('draws a box as its polygon', () => {
    const rle = rleFromBbox([10, 20, 30, 15], 50, 60);
    expect(rleDecode(rle)).toEqual(pixels(50, 60, rect(10, 20, 40, 35)));
  });

  it('clips a polygon to the image', () => {
    const rle = rleFromPolygon([-5, -5, 8, -5, 8, 20, -5, 20], 10, 6);
    expect(rleDecode(rle)).toEqual(pixels(10, 6, rect(0, 0, 6, 10)));
    expect(rle.counts.reduce((a, b) => a + b, 0)).toBe(60);
  });
});

describe('compressed RLE strings', () => {
  const results = readJson<(Segmented & { category_id: number })[]>('06-segm-crowd-polygons', 'results.json');

  it('decodes cocoapi-written strings of rectangular masks to those rectangles', () => {
    // Results 3, 4, 6, 8 and 9 of case 06 are boxes drawn as masks: the mask is the bbox.
    for (const i of [3, 4, 6, 8, 9]) {
      const { bbox, segmentation } = results[i]!;
      const [h, w] = segmentation.size;
      const rle = rleFromString(segmentation.counts as string, h, w);
      const [x, y, bw, bh] = bbox as [number, number, number, number];
      expect(rleDecode(rle), `result ${i}`).toEqual(pixels(h, w, rect(x, y, x + bw, y + bh)));
      expect(rleToBbox(rle)).toEqual(bbox);
    }
  });

  it('encodes back to the same string, covering the whole image', () => {
    for (const { segmentation } of results) {
      const [h, w] = segmentation.size;
      const rle = rleFromString(segmentation.counts as string, h, w);
      expect(rleToString(rle)).toBe(segmentation.counts);
      expect(rle.counts.reduce((a, b) => a + b, 0)).toBe(h * w);
      expect(rleEncode(rleDecode(rle), h, w).counts).toEqual(rle.counts);
    }
  });

  it('round-trips counts above 2^31 and runs of any length', () => {
    const counts = [0, 3, 2 ** 31 + 7, 1, 31, 32, 1023, 1024, 5];
    const rle = rleFromCounts(counts, 1, counts.reduce((a, b) => a + b, 0));
    expect(Array.from(rleFromString(rleToString(rle), rle.h, rle.w).counts)).toEqual(counts);
  });

  it('refuses a truncated string', () => {
    // 'T' (36) has the continuation bit and nothing follows it.
    expect(() => rleFromString('T', 10, 10)).toThrow(/malformed/);
  });
});

describe('uncompressed crowd RLE', () => {
  const crowds: Segmented[] = [
    ...readJson<{ annotations: Segmented[] }>('01-crowd-and-empty', 'gt.json').annotations,
    ...readJson<{ annotations: Segmented[] }>('06-segm-crowd-polygons', 'gt.json').annotations,
  ].filter((a) => a.iscrowd);

  it('has the area and box its annotation states, and survives compression', () => {
    expect(crowds.length).toBe(2);
    for (const { segmentation, area, bbox } of crowds) {
      const [h, w] = segmentation.size;
      const rle = rleFromCounts(segmentation.counts as number[], h, w);
      expect(rleArea(rle)).toBe(area);
      expect(rleToBbox(rle)).toEqual(bbox);
      expect(rleFromString(rleToString(rle), h, w).counts).toEqual(rle.counts);
    }
  });
});

describe('merge and IoU', () => {
  const a: Rle = rleFromBbox([0, 0, 4, 4], 8, 8); // 16 px
  const b: Rle = rleFromBbox([2, 0, 4, 4], 8, 8); // 16 px, 8 shared
  const far: Rle = rleFromBbox([6, 6, 2, 2], 8, 8);

  it('unions masks pixel by pixel', () => {
    const u = rleMerge([a, b, far]);
    expect(rleDecode(u)).toEqual(pixels(8, 8, (x, y) => rect(0, 0, 6, 4)(x, y) || rect(6, 6, 8, 8)(x, y)));
    expect(rleArea(u)).toBe(16 + 16 - 8 + 4);
  });

  it('gives intersection over union, over the detection area for a crowd GT, -1 across sizes', () => {
    const iou = maskIou([a, far], [b, b], [false, true]);
    expect(Array.from(iou)).toEqual([8 / 24, 8 / 16, 0, 0]);
    const other = rleFromBbox([0, 0, 4, 4], 8, 9);
    expect(Array.from(maskIou([a], [other], [false]))).toEqual([-1]);
  });

  it('boxes: same rules in doubles', () => {
    const iou = boxIou([0, 0, 10, 10, 20, 20, 5, 5, 15, 0, 5, 5], [5, 0, 10, 10, 5, 0, 10, 10], [0, 1]);
    // rows: detections, columns: GTs (regular, crowd). The third box only touches the GTs' edge.
    expect(Array.from(iou)).toEqual([50 / 150, 50 / 100, 0, 0, 0, 0]);
  });
});
