import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Label lines in every form a tool may write them: the reader reads plain box lines in place and
 * the rest through a general path. Each stored box must be what Number() makes of the line's own
 * fields (computed here from the text), to the last bit, and each malformed line a warning.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const W = 640;
const H = 480;
const LINES = [
  '3 0.5 0.5 0.25 0.125',
  '3 0.123456 0.654321 0.1 0.2\r',
  '12 5e-1 0.5 0.2 0.2',
  '7  0.5 0.5 0.2 0.2',
  '7\t0.3 0.3 0.1 0.1',
  '007 .5 0.5 0.2 0.2',
  '1 0.333333333333333 0.1234567890123456 0.2 0.2',
  '1 0.999999999999999 0.000000000000001 0.123456789012345 0.2',
  '2 -0.0 1.0 0.5 0.5',
  '4 0.1 0.2 0.3',
  '4 0.1 0.2 0.3 0.4 ',
  '5 0.1 0.2 0.3 abc',
  ' 6 0.9 0.9 0.05 0.05',
  '8 0.95. 0.5 0.1 0.1',
  '9 5. 0.5 0.1 0.1',
  '',
  '10 -0.25 0.5 0.1 0.1',
  '11 0.5 0.5 1 1',
];
const TEXT = `${LINES.join('\n')}\n\n  \n`;

describe('YOLO label numbers', () => {
  it('stores each box as Number() reads its fields, and counts the lines it cannot read', async () => {
    const root = fs.realpathSync(env.dir);
    fs.mkdirSync(path.join(root, 'numbers/images/train'), { recursive: true });
    fs.mkdirSync(path.join(root, 'numbers/labels/train'), { recursive: true });
    await sharp({ create: { width: W, height: H, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().toFile(path.join(root, 'numbers/images/train/a.jpg'));
    fs.writeFileSync(path.join(root, 'numbers/labels/train/a.txt'), TEXT);
    fs.writeFileSync(path.join(root, 'numbers/data.yaml'), `path: .\ntrain: images/train\nnames: [${Array.from({ length: 13 }, (_, i) => `c${i}`).join(', ')}]\n`);

    const events = await ingestAll(env.dv, { annotationPath: path.join(root, 'numbers/data.yaml'), format: 'yolo' });
    const last = events.at(-1)!;
    expect(last.stage, last.message).toBe('complete');

    // The expected rows, from the text: trimmed, split on whitespace, each field through Number().
    const expected: number[][] = [];
    const unreadable: string[] = [];
    const outside: string[] = [];
    LINES.forEach((line, i) => {
      const f = line.trim().split(/\s+/);
      const v = f.slice(1).map(Number);
      if (line.trim() === '') return;
      if (f.length !== 5 || !Number.isInteger(Number(f[0])) || v.some((x) => !Number.isFinite(x))) {
        unreadable.push(`labels/train/a.txt:${i + 1}`);
        return;
      }
      if (v.some((x) => x < 0 || x > 1)) outside.push(`labels/train/a.txt:${i + 1}`);
      const [cx, cy, w, h] = v as [number, number, number, number];
      expected.push([Number(f[0]), (cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H, w * W * h * H]);
    });
    const rows = await env.dv.db.query(
      `SELECT category_id, bbox_x, bbox_y, bbox_w, bbox_h, area FROM annotations WHERE dataset_id = $1 ORDER BY ord`,
      [last.dataset_id!],
    );
    const stored = rows.map((r) => [r.category_id, r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h, r.area] as number[]);
    expect(stored.length).toBe(expected.length);
    // Bit for bit, -0 included (Object.is).
    stored.forEach((row, k) => row.forEach((x, j) => expect(Object.is(x, expected[k]![j]), `row ${k} column ${j}: ${x} vs ${expected[k]![j]}`).toBe(true)));

    const warning = (code: string) => last.warnings!.find((w) => w.code === code);
    expect(warning('unreadable_label_lines')).toMatchObject({ count: unreadable.length, examples: unreadable.slice(0, 5) });
    expect(warning('coordinates_outside_unit_range')).toMatchObject({ count: outside.length, examples: outside.slice(0, 5) });
    expect(warning('empty_label_lines')).toMatchObject({ count: 1, examples: [`labels/train/a.txt:${LINES.indexOf('') + 1}`] });
  });
});
