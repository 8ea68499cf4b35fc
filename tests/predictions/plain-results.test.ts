import { describe, expect, it } from 'vitest';
import { PlainResults } from '../../dist/services/predictions/plain-results.js';
import { A, newAnnotationColumns } from '../../dist/services/records/columns.js';

/**
 * The in-place scan of plain results (predictions/plain-results.ts) against JSON.parse of the same
 * text: every value bit for bit (Number()'s), whatever the chunks' edges, and every result it does
 * not read left at its first byte for the token reader. Import-level behaviour is in split.test.ts
 * and import.test.ts.
 */

/** A fixed linear congruential sequence. */
function random(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** Numbers in the forms detectors write: short and long decimals, integers, exponents, -0, up to 17 digits. */
function numberText(next: () => number): string {
  const x = next();
  const forms = [
    () => (x * 640).toFixed(2),
    () => String(x * 1000),
    () => String(Math.round(x * 1000)),
    () => (x * 1e-5).toExponential(3),
    () => `${(x * 9 + 1).toFixed(1)}E+${Math.floor(x * 4)}`,
    () => (x * 123.456789012345678).toPrecision(17),
    () => '-0',
    () => `-${(x * 50).toFixed(3)}`,
    () => '0.1',
  ];
  return forms[Math.floor(next() * forms.length)]!();
}

interface Expected {
  imageId: number;
  categoryId: number;
  box: number[] | null;
  score: number;
}

/** A file of plain results in varied layouts; with the values JSON.parse gives for them. */
function plainFile(count: number, seed: number): { text: string; expected: Expected[] } {
  const next = random(seed);
  const parts: string[] = [];
  const space = () => [' ', '', '\n  ', '\t', '\r\n'][Math.floor(next() * 5)]!;
  for (let i = 0; i < count; i++) {
    const fields = [
      `"image_id":${space()}${Math.floor(next() * 1e6)}`,
      `"category_id": ${Math.floor(next() * 90)}`,
      `"score":${numberText(next)}`,
      ...(i === 0 || next() < 0.95 ? [`"bbox": [${[0, 1, 2, 3].map(() => numberText(next)).join(`,${space()}`)}${space()}]`] : []),
      ...(next() < 0.3 ? [`"category_name": "person ${i}"`, `"id": ${i}`, '"iscrowd": 0', '"segmentation": null', '"flag": true', '"none": null'] : []),
    ];
    fields.sort(() => next() - 0.5);
    parts.push(`{${space()}${fields.join(`,${space()}`)}${space()}}`);
  }
  const text = `${space()}[${parts.join(`,${space()}`)}]${space()}`;
  const expected = (JSON.parse(text) as Record<string, unknown>[]).map((r) => ({
    imageId: r.image_id as number,
    categoryId: r.category_id as number,
    box: (r.bbox as number[] | undefined) ?? null,
    score: r.score as number,
  }));
  return { text, expected };
}

/** Scans `text` in chunks of random sizes; the rows, and what was left to the token reader. */
function scan(text: string, seed: number, maxChunk: number, insideArray = false) {
  const bytes = new TextEncoder().encode(text);
  const next = random(seed);
  const out = { builder: newAnnotationColumns() };
  const plain = new PlainResults(out, { insideArray });
  let left: Uint8Array | null = null;
  for (let at = 0; at < bytes.length && !left; ) {
    const size = 1 + Math.floor(next() * maxChunk);
    const rest = plain.scan(bytes.slice(at, at + size));
    at += size;
    // What the token reader reads: the scan's rest of this chunk, then every later chunk.
    if (rest) left = new Uint8Array([...rest, ...bytes.slice(at)]);
  }
  const c = out.builder.build();
  const rows = Array.from({ length: c.count }, (_, i) => {
    const o = i * c.stride;
    const n = c.nums;
    return { imageId: n[o + A.imageId], categoryId: n[o + A.categoryId], box: Number.isNaN(n[o + A.x]) ? null : [n[o + A.x], n[o + A.y], n[o + A.w], n[o + A.h]], score: n[o + A.score], area: n[o + A.area], id: n[o + A.id] };
  });
  return { plain, rows, left: left ? new TextDecoder('utf-8', { ignoreBOM: true }).decode(left) : null };
}

/** Object.is on every number: -0 and the last bit count. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' || typeof b === 'number') return Object.is(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  return a === b;
}

describe('plain results read in place', () => {
  for (const [maxChunk, seed] of [[7, 1], [64, 2], [4096, 3], [1 << 20, 4]] as const) {
    it(`equals JSON.parse bit for bit, chunks of up to ${maxChunk} bytes`, () => {
      const { text, expected } = plainFile(400, seed);
      const { plain, rows, left } = scan(text, seed, maxChunk);
      expect(left).toBeNull();
      expect(plain.complete).toBe(true);
      expect(rows).toHaveLength(expected.length);
      rows.forEach((r, i) => {
        const e = expected[i]!;
        const ok = same(r.imageId, e.imageId) && same(r.categoryId, e.categoryId) && same(r.box, e.box) && same(r.score, e.score) && r.id === i + 1 &&
          // loadRes: the file's first result has a box, so every box's area is w·h; none without one.
          same(r.area, e.box ? e.box[2]! * e.box[3]! : NaN);
        if (!ok) expect({ row: i, got: r }).toEqual({ row: i, got: e });
      });
    });
  }

  // Each of these makes the token reader read on from the result's first byte.
  const others = {
    'a polygon': '{"image_id": 1, "category_id": 2, "segmentation": [[1, 2, 3, 4, 5, 6]], "score": 0.5}',
    'an empty box': '{"image_id": 1, "category_id": 2, "bbox": [], "score": 0.5}',
    'a null box': '{"image_id": 1, "category_id": 2, "bbox": null, "score": 0.5}',
    'three numbers in a box': '{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3], "score": 0.5}',
    'an escape in a key': '{"image\\u005fid": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.5}',
    'an escape in a skipped string': '{"image_id": 1, "category_id": 2, "name": "a\\"b", "score": 0.5}',
    'a nested skipped value': '{"image_id": 1, "category_id": 2, "extra": {"a": 1}, "score": 0.5}',
    'NaN in a box': '{"image_id": 1, "category_id": 2, "bbox": [NaN, 2, 3, 4], "score": 0.5}',
    'a key twice': '{"image_id": 1, "image_id": 3, "category_id": 2, "score": 0.5}',
    'an id that is not an integer': '{"image_id": 1.5, "category_id": 2, "score": 0.5}',
    'a score of 1e400': '{"image_id": 1, "category_id": 2, "score": 1e400}',
    'no score': '{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4]}',
    'a string score': '{"image_id": 1, "category_id": 2, "score": "0.5"}',
    'a leading zero': '{"image_id": 01, "category_id": 2, "score": 0.5}',
    'a segmentation string': '{"image_id": 1, "category_id": 2, "segmentation": "x", "score": 0.5}',
    'an empty object': '{}',
    'an array': '[1, 2]',
  };
  for (const [what, other] of Object.entries(others)) {
    it(`leaves a result with ${what} to the token reader, from its first byte`, () => {
      const { text } = plainFile(30, 9);
      const results = text.trim().slice(1, -1).trim();
      // The other result after the 17th plain one: the scan reads 17 and stops at it.
      const cut = nthResultEnd(results, 17);
      const file = `[${results.slice(0, cut)},\n ${other}, ${results.slice(cut + 1)}]`;
      for (const maxChunk of [5, 100, 1 << 20]) {
        const { plain, rows, left } = scan(file, 17, maxChunk);
        expect(rows).toHaveLength(17);
        expect(plain.count).toBe(17);
        expect(left?.slice(0, other.length)).toBe(other);
      }
    });
  }

  it('leaves a text that does not open an array (a COCO dataset file, a BOM) from its first byte', () => {
    for (const text of ['{"images": []}', '\uFEFF[{"image_id": 1, "category_id": 2, "score": 1}]']) {
      const { rows, left } = scan(text, 1, 1 << 20);
      expect(rows).toHaveLength(0);
      expect(left).toBe(text);
    }
  });

  it('inside a range, reads from its first result and ends between results', () => {
    const { text, expected } = plainFile(50, 5);
    const results = text.trim().slice(1, -1).trim();
    const cut = nthResultEnd(results, 20);
    const { plain, rows, left } = scan(results.slice(0, cut), 5, 300, true);
    expect(left).toBeNull();
    expect(rows.map((r) => r.imageId)).toEqual(expected.slice(0, 20).map((e) => e.imageId));
    expect(plain.betweenResults).toBe(true);
    // Cut inside a result instead: not between results, the cut's bytes kept.
    const inside = scan(results.slice(0, cut - 3), 5, 300, true);
    expect(inside.plain.betweenResults).toBe(false);
    expect(inside.plain.takeCarry()).not.toBeNull();
  });
});

/** The index just after the `}` that closes the n-th result of `results` (results only, no arrays in them). */
function nthResultEnd(results: string, n: number): number {
  let depth = 0;
  let seen = 0;
  for (let i = 0; i < results.length; i++) {
    const c = results[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0 && ++seen === n) return i + 1;
  }
  throw new Error('not enough results');
}
