import { describe, expect, it } from 'vitest';
import { numberText } from '../../dist/services/export/coco-json.js';

/**
 * numberText(x), the export's number-to-text for boxes and areas, is String(x) for every double:
 * decimals of 1–6 fraction digits as parsed from text, their products (areas), integers, values
 * near the fast path's bounds, and doubles that are no short decimal.
 */

/** A fixed linear congruential sequence. */
function random(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe('numberText', () => {
  it('is String(x) for 2 million doubles of the kinds boxes and areas hold, and others', () => {
    const next = random(11);
    const values: number[] = [0, -0, 1, 0.1, 0.3, 0.1 + 0.2, 1e-7, 5e-324, 1.7976931348623157e308, 9e10, 9e10 - 0.0001, 8.99999999e10, 2 ** 53, 123456789.1234, NaN, Infinity, -1.5];
    for (let i = 0; i < 2_000_000; i++) {
      const digits = 1 + (i % 6);
      const w = Number((next() * 1000).toFixed(digits));
      const h = Number((next() * 1000).toFixed(2));
      values.push(w, w * h, -w, next() * 1e12, Math.round(next() * 1e6));
    }
    const wrong = values.filter((x) => numberText(x) !== String(x));
    expect(wrong.slice(0, 5).map((x) => [x, numberText(x), String(x)])).toEqual([]);
  });
});
