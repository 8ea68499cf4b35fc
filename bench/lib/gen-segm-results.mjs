#!/usr/bin/env node
// node bench/lib/gen-segm-results.mjs GT.json OUT.json [--seed S] [--fp-per-image L]
//
// Mask results (compressed RLE, no bbox, as cocoapi's own segm results) derived from a COCO GT file
// with polygons (../shared/bench/gen-coco.mjs), deterministic from the seed, shaped like the
// shared segm-300 case (../shared/eval-reference/README.md, whose own generator is not shared):
//   * each non-crowd GT object is missed with a size-dependent probability (area < 32²: 0.30,
//     < 96²: 0.12, else 0.05); otherwise its polygons are jittered (centre shift and log-normal
//     x/y scaling, relative sigma 0.02 + 0.25/sqrt(sqrt(area)), ×3 for 12% of them) and rasterised
//     on cocoapi's grid (dist/services/evaluation/mask.js), score growing with the jitter's inverse;
//   * 7% take another class, 10% get a further-jittered duplicate with a lower score;
//   * each crowd region yields 0–3 blobs of its class inside its box;
//   * Poisson(L) false-positive blobs per image (star-shaped polygons, side 4–400 px
//     log-uniform), class from the image's GT classes (60%) or any, low scores;
//   * at most 100 per image (top scores), grouped by image in GT image order, score-descending,
//     scores rounded to 5 decimals.
// Needs `npm run build` (it rasterises with the engine's own mask code).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');
const { rleFromPolygons, rleToString } = await import(path.join(ROOT, 'dist/services/evaluation/mask.js'));

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { seed: { type: 'string', default: '1' }, 'fp-per-image': { type: 'string', default: '7.5' } },
});
if (positionals.length !== 2) {
  process.stderr.write('usage: node bench/lib/gen-segm-results.mjs GT.json OUT.json [--seed S] [--fp-per-image L]\n');
  process.exit(2);
}
const [gtFile, outFile] = positionals;
const FP_PER_IMAGE = Number(opts['fp-per-image']);

// mulberry32: small, deterministic, good enough for a benchmark's noise.
let state = (Number(opts.seed) * 0x9e3779b9) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
function poisson(lambda) {
  const limit = Math.exp(-lambda);
  let k = 0;
  for (let p = random(); p > limit; p *= random()) k++;
  return k;
}
const pick = (xs) => xs[Math.floor(random() * xs.length)];
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

const gt = JSON.parse(fs.readFileSync(gtFile, 'utf8'));
const categoryIds = gt.categories.map((c) => c.id);
const byImage = new Map(gt.images.map((im) => [im.id, []]));
for (const a of gt.annotations) byImage.get(a.image_id)?.push(a);

/** The polygons moved by (dx, dy) and scaled by (sx, sy) about (cx, cy), clipped to the image. */
function transform(polygons, { cx, cy, dx, dy, sx, sy }, W, H) {
  return polygons.map((p) => p.map((v, i) => (i % 2 === 0 ? clamp(cx + (v - cx) * sx + dx, 0, W) : clamp(cy + (v - cy) * sy + dy, 0, H))));
}

/** A star-shaped blob of n vertices inside the ellipse (cx, cy, rx, ry). */
function blob(cx, cy, rx, ry, W, H) {
  const n = 8 + Math.floor(random() * 16);
  const xy = [];
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    const r = 0.7 + 0.3 * random();
    xy.push(clamp(cx + Math.cos(a) * rx * r, 0, W), clamp(cy + Math.sin(a) * ry * r, 0, H));
  }
  return [xy];
}

function jittered(polygons, bbox, sigma, W, H) {
  const [x, y, w, h] = bbox;
  return transform(
    polygons,
    { cx: x + w / 2, cy: y + h / 2, dx: normal() * sigma * w, dy: normal() * sigma * h, sx: Math.exp(normal() * sigma), sy: Math.exp(normal() * sigma) },
    W,
    H,
  );
}

const out = fs.openSync(outFile, 'w');
let written = 0;
let buffer = '[';
const kinds = { tp_like: 0, confused: 0, dup: 0, crowd: 0, fp: 0, capped: 0 };
for (const image of gt.images) {
  const W = image.width;
  const H = image.height;
  const anns = byImage.get(image.id);
  const dets = [];
  const add = (categoryId, polygons, score, kind) => {
    dets.push({ categoryId, polygons, score: Math.round(clamp(score, 0.001, 1) * 1e5) / 1e5 });
    kinds[kind]++;
  };
  for (const a of anns) {
    if (a.iscrowd) {
      const [x, y, w, h] = a.bbox;
      const k = Math.floor(random() * 4);
      for (let i = 0; i < k; i++) {
        const rx = (w / 4) * (0.3 + 0.7 * random());
        const ry = (h / 4) * (0.3 + 0.7 * random());
        add(a.category_id, blob(x + rx + random() * Math.max(0, w - 2 * rx), y + ry + random() * Math.max(0, h - 2 * ry), rx, ry, W, H), 0.2 + 0.5 * random(), 'crowd');
      }
      continue;
    }
    if (!Array.isArray(a.segmentation)) continue;
    const miss = a.area < 32 ** 2 ? 0.3 : a.area < 96 ** 2 ? 0.12 : 0.05;
    if (random() < miss) continue;
    const poor = random() < 0.12;
    const sigma = (0.02 + 0.25 / Math.sqrt(Math.sqrt(Math.max(1, a.area)))) * (poor ? 3 : 1);
    const quality = clamp(1 - sigma * 3, 0, 1);
    const confused = random() < 0.07;
    const category = confused ? pick(categoryIds.filter((c) => c !== a.category_id)) : a.category_id;
    const score = 0.25 + 0.65 * quality + normal() * 0.08 - (confused ? 0.2 : 0);
    add(category, jittered(a.segmentation, a.bbox, sigma, W, H), score, confused ? 'confused' : 'tp_like');
    if (random() < 0.1) add(category, jittered(a.segmentation, a.bbox, sigma * 2, W, H), score * (0.4 + 0.4 * random()), 'dup');
  }
  const imageClasses = [...new Set(anns.map((a) => a.category_id))];
  const fps = poisson(FP_PER_IMAGE * Math.exp(normal() * 0.8 - 0.32));
  for (let i = 0; i < fps; i++) {
    const side = Math.exp(Math.log(4) + random() * (Math.log(400) - Math.log(4)));
    const aspect = Math.exp(normal() * 0.5);
    const rx = (side * Math.sqrt(aspect)) / 2;
    const ry = side / Math.sqrt(aspect) / 2;
    const category = imageClasses.length > 0 && random() < 0.6 ? pick(imageClasses) : pick(categoryIds);
    add(category, blob(random() * W, random() * H, rx, ry, W, H), random() ** 2 * 0.6, 'fp');
  }
  // Score-descending, stable; the top 100 kept.
  const order = dets.map((d, i) => i).sort((i, j) => dets[j].score - dets[i].score || i - j);
  if (order.length > 100) kinds.capped += order.length - 100;
  for (const i of order.slice(0, 100)) {
    const d = dets[i];
    const counts = rleToString(rleFromPolygons(d.polygons, H, W));
    buffer += `${written === 0 ? '' : ','}\n${JSON.stringify({ image_id: image.id, category_id: d.categoryId, segmentation: { size: [H, W], counts }, score: d.score })}`;
    written++;
    if (buffer.length > 1 << 20) {
      fs.writeSync(out, buffer);
      buffer = '';
    }
  }
}
fs.writeSync(out, `${buffer}\n]\n`);
fs.closeSync(out);
process.stderr.write(`${JSON.stringify({ images: gt.images.length, gt_annotations: gt.annotations.length, detections: written, generated_by_kind: kinds })}\n`);
