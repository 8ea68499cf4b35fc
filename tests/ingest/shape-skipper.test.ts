import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readShapeSummary, ShapeSkipper } from '../../src/services/ingest/formats/coco/shape-skipper.js';
import { COCO128, dataRoots, DEMO, hasShared, ingestAll, openTestEnv, tempDir, type TestEnv } from '../helpers/env.js';

/**
 * The polygon summarizer (src/services/ingest/formats/coco/shape-skipper.ts) replaces an annotation's
 * `segmentation` / `keypoints` arrays with a summary before tokenizing. It must never change
 * what a file means: every output has its input's length, parses to the same document but for
 * the summarized values (whose counts must be right), and whatever it cannot prove valid is left
 * untouched for the tokenizer to read or refuse.
 */

const PREFIX = 'dvshape-test:';

/** Runs `text` through one skipper in the given pieces; every piece must keep its length. */
function skip(text: string, cuts: number[] = []): { out: string; replaced: number } {
  const skipper = new ShapeSkipper(PREFIX);
  const bounds = [0, ...cuts, text.length];
  let out = '';
  for (let k = 0; k + 1 < bounds.length; k++) {
    const piece = text.slice(bounds[k], bounds[k + 1]);
    const done = skipper.transform(piece);
    expect(done.length).toBe(piece.length);
    out += done;
  }
  return { out, replaced: skipper.replaced };
}

/** The document with each summary turned back into what the reader makes of it. */
function decoded(out: string): unknown {
  return JSON.parse(out, (_key, value: unknown) => {
    if (typeof value !== 'string') return value;
    const s = readShapeSummary(value, PREFIX);
    return s ? { summary: s } : value;
  });
}

/** What the reader counts for a raw array: arrays directly inside it, numbers at any depth. */
function counts(value: unknown[]): { summary: { arrays: number; numbers: number } } {
  const numbers = (v: unknown): number => (Array.isArray(v) ? v.reduce((n: number, x) => n + numbers(x), 0) : 1);
  return { summary: { arrays: value.filter(Array.isArray).length, numbers: numbers(value) } };
}

const polygon = (points: number) => Array.from({ length: points * 2 }, (_, i) => Math.round((i * 37.25 + 3) * 100) / 100);

function coco(annotations: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return { images: [{ id: 1, file_name: 'a.jpg', width: 640, height: 480 }], annotations, categories: [{ id: 1, name: 'x' }], ...extra };
}

describe('ShapeSkipper on its own', () => {
  it('summarizes polygon lists and keypoint lists of annotations, keeping every length', () => {
    const doc = coco([
      { id: 1, image_id: 1, category_id: 1, segmentation: [polygon(12), polygon(5)], bbox: [1, 2, 3, 4] },
      { id: 2, image_id: 1, category_id: 1, segmentation: [polygon(30)], keypoints: polygon(17).map((v, i) => (i % 3 === 2 ? 2 : v)) },
    ]);
    const text = JSON.stringify(doc, null, 2);
    const { out, replaced } = skip(text);
    expect(replaced).toBe(3);
    const want = structuredClone(doc) as { annotations: Record<string, unknown>[] };
    for (const a of want.annotations) {
      a.segmentation = counts(a.segmentation as unknown[]);
      if (a.keypoints) a.keypoints = counts(a.keypoints as unknown[]);
    }
    expect(decoded(out)).toEqual(want);
  });

  it('gives the same document however the text is cut into pieces', () => {
    const doc = coco(Array.from({ length: 40 }, (_, i) => ({ id: i, image_id: 1, category_id: 1, segmentation: [polygon(3 + (i % 7))], note: `"}, {"segmentation": [[1, 2]]` })));
    const text = JSON.stringify(doc);
    // Each annotation's segmentation as the reader counts it, summarized or not.
    const normalized = (out: string) =>
      (decoded(out) as { annotations: Record<string, unknown>[] }).annotations.map((a) => ({
        ...a,
        segmentation: Array.isArray(a.segmentation) ? counts(a.segmentation) : a.segmentation,
      }));
    const want = doc.annotations.map((a) => ({ ...a, segmentation: counts(a.segmentation as unknown[]) }));
    expect(normalized(skip(text).out)).toEqual(want);
    for (const step of [1, 7, 61, 256, 1000]) {
      const cuts = Array.from({ length: Math.floor((text.length - 1) / step) }, (_, k) => (k + 1) * step);
      // An array cut by a piece's end is left whole for the tokenizer: the same document either way.
      expect(normalized(skip(text, cuts).out)).toEqual(want);
    }
  });

  it('leaves alone what is not an annotation array of numbers', () => {
    const doc = coco(
      [
        { id: 1, image_id: 1, category_id: 1, segmentation: { size: [480, 640], counts: 'PPYo0' + 'a'.repeat(40) } },
        { id: 2, image_id: 1, category_id: 1, segmentation: [polygon(20)], attributes: { segmentation: [polygon(20)] } },
        { id: 3, image_id: 1, category_id: 1, caption: 'the "segmentation": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]] of it' },
        { id: 4, image_id: 1, category_id: 1, segmentation: [[1, 2, null, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]] },
        { id: 5, image_id: 1, category_id: 1, segmentation: [['1', 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]] },
        { id: 6, image_id: 1, category_id: 1, segmentation: [[[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]] },
      ],
      { info: { segmentation: [polygon(20)] } },
    );
    (doc.images[0] as Record<string, unknown>).segmentation = [polygon(20)];
    const text = JSON.stringify(doc);
    const { out, replaced } = skip(text);
    // Only annotation 2's own segmentation, and annotation 6's (arrays in arrays are still numbers only).
    expect(replaced).toBe(2);
    const got = decoded(out) as { annotations: Record<string, unknown>[]; images: Record<string, unknown>[]; info: unknown };
    expect(got.annotations[0]).toEqual(doc.annotations[0]);
    expect(got.annotations[1]!.attributes).toEqual(doc.annotations[1]!.attributes);
    expect(got.annotations[1]!.segmentation).toEqual({ summary: { arrays: 1, numbers: 40 } });
    expect(got.annotations.slice(2, 5)).toEqual(doc.annotations.slice(2, 5));
    expect(got.annotations[5]!.segmentation).toEqual({ summary: { arrays: 1, numbers: 16 } });
    expect(got.images).toEqual(doc.images);
    expect(got.info).toEqual(doc.info);
  });

  it('never rewrites an array whose JSON the tokenizer would refuse', () => {
    const bad = ['[[01, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]', '[[1., 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]', '[[.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]',
      '[[1 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]', '[[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,]]', '[[,1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]',
      '[[1e, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]', '[[+1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]', '[[-, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]',
      '[[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12][1, 2]]', '[[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], NaN]', '[[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]'];
    for (const array of bad) {
      const text = `{"images": [], "annotations": [{"id": 1, "segmentation": ${array}, "area": 1}], "categories": []}`;
      const { out, replaced } = skip(text);
      expect([array, replaced, out]).toEqual([array, 0, text]);
    }
  });

  it('accepts every JSON number form in a polygon', () => {
    const array = '[[0, -0, 1.5, -2.25e3, 3E+2, 4e-2, 0.0, 10, 123456789012, -0.5E-7, 6, 7]]';
    const text = `{"annotations": [{"segmentation": ${array}}]}`;
    const { out, replaced } = skip(text);
    expect(replaced).toBe(1);
    expect(decoded(out)).toEqual({ annotations: [{ segmentation: { summary: { arrays: 1, numbers: 12 } } }] });
  });

  it('follows strings with escaped quotes and backslashes, also across pieces', () => {
    const doc = coco([
      { id: 1, image_id: 1, category_id: 1, note: 'a \\"quoted\\" \\\\ "segmentation": [[1,2,3,4,5,6,7,8,9,10,11,12]] \\', segmentation: [polygon(10)] },
    ]);
    const text = JSON.stringify(doc);
    // Every cut from the key "note" to past its value's end, backslash runs included.
    for (const cut of [...Array(90).keys()].map((k) => text.indexOf('note') + k)) {
      const { out } = skip(text, [cut]);
      const got = decoded(out) as { annotations: Record<string, unknown>[] };
      expect(got.annotations[0]!.note).toBe(doc.annotations[0]!.note);
      expect(got.annotations[0]!.segmentation).toEqual({ summary: { arrays: 1, numbers: 20 } });
    }
  });

  it('does not take a key written with escapes for a raw key', () => {
    const text = `{"annotations": [{"segm\\u0065ntation": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]}]}`;
    expect(skip(text)).toEqual({ out: text, replaced: 0 });
  });

  it('reads a later part of a split file, which starts inside the annotations array', () => {
    const part = `{"annotations":[{"id": 9, "segmentation": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]}`;
    expect(skip(part).replaced).toBe(1);
  });

  it('gives up on nesting deeper than it tracks, and stays out of the way', () => {
    const deep = `{"images": [${'['.repeat(80)}${']'.repeat(80)}], "annotations": [{"segmentation": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]}]}`;
    expect(skip(deep)).toEqual({ out: deep, replaced: 0 });
  });

  it('leaves text with a rewritten NaN to the tokenizer', () => {
    const text = `{"annotations": [{"area": 7.7e-99997, "segmentation": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]}]}`;
    expect(skip(text).replaced).toBe(0);
  });
});

describe('ingesting with the summarizer (shapes off) and without it (shapes on)', () => {
  let env: TestEnv;
  let fx: string;

  beforeAll(async () => {
    fx = tempDir('dv-skip-');
    env = await openTestEnv({ DATAVISOR_DATA_ROOTS: dataRoots(fx) });
  });
  afterAll(async () => {
    await env?.close();
    fs.rmSync(fx, { recursive: true, force: true });
  });

  describe('the demo dataset', () => sameEitherWay(DEMO));
  describe.skipIf(!hasShared)('coco128 (../shared)', () => sameEitherWay(COCO128));

  function sameEitherWay(source: { annotations: string; images: string }): void {
    const ingest = (annotationPath: string, storeShapes: boolean) => ingestAll(env.dv, { annotationPath, imageDir: source.images, storeShapes });

    it('stores the same kinds, polygon and point counts for every annotation', async () => {
      const coco = JSON.parse(fs.readFileSync(source.annotations, 'utf8')) as { images: unknown[]; annotations: unknown[] };
      const [off, on] = [await ingest(source.annotations, false), await ingest(source.annotations, true)];
      const rows = async (id: string) =>
        (await env.dv.samples.annotationsOf(id, Array.from({ length: coco.images.length }, (_, i) => i))).flat().map((a) => [a.ord, a.segmentationKind, a.polygonCount, a.pointCount, a.numKeypoints]);
      const a = await rows(off.at(-1)!.dataset_id!);
      expect(a).toHaveLength(coco.annotations.length);
      expect(a).toEqual(await rows(on.at(-1)!.dataset_id!));
    });

    it('ends a file with a malformed polygon in the same error either way', async () => {
      const text = fs.readFileSync(source.annotations, 'utf8');
      const at = text.indexOf('[[', text.indexOf('"annotations"') + 5000);
      for (const [name, change] of [['leading-zero', '[[01, '], ['double-comma', '[[1,, '], ['stray', '[[1, x']] as const) {
        const file = path.join(fx, `${name}.json`);
        fs.writeFileSync(file, text.slice(0, at) + change + text.slice(at + 2));
        const [off, on] = [(await ingest(file, false)).at(-1)!, (await ingest(file, true)).at(-1)!];
        expect(off.stage).toBe('error');
        expect({ code: off.code, message: off.message }).toEqual({ code: on.code, message: on.message });
      }
    });
  }
});
