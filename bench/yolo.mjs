#!/usr/bin/env node
// node bench/yolo.mjs [--runs 3 --images 118287 --boxes 860001 --dir <scratch>]   (after npm run build)
//
// A train2017-scale Ultralytics YOLO dataset (data.yaml, images/train2017, labels/train2017):
// 118,287 images with real JPEG headers (a few hundred real JPEGs, coco128's and ones drawn here
// with sharp at varied sizes, hard-linked under every name) and 860,001 box lines. Ingested with
// thumbnails off, each run in a fresh process and database, interleaved with a bare pass in the
// same run that reads every label file and every image header (and parses every line) with the
// same calls, in one thread; medians of the runs, wall time and peak RSS.
// The dataset is generated once into the scratch folder ($DATAVISOR_BENCH_DIR or <tmp>/datavisor-bench),
// never into the repo. A double-scale dataset (236,574 images, 1,720,002 boxes) is ingested in every
// run too: peak RSS should not grow with the dataset (the reader holds a folder's names and a few
// batches; DuckDB's pool has its memory limit), and time should grow linearly.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32 as rng } from '../dist/demo/rng.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const COCO128 = path.resolve(ROOT, '../shared/realdata/coco128-instances/train2017');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    large: { type: 'string', default: '2' },
    images: { type: 'string', default: '118287' },
    boxes: { type: 'string', default: '860001' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
    child: { type: 'string' },
    data: { type: 'string' },
    db: { type: 'string' },
  },
});

const NAMES = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light', 'fire hydrant',
  'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
  'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove',
  'skateboard', 'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
  'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'dining table',
  'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
  'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush'];

async function generate(dir, images, boxes) {
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return;
  fs.rmSync(dir, { recursive: true, force: true });
  const { default: sharp } = await import('sharp');
  const src = path.join(dir, 'sources');
  const imgDir = path.join(dir, 'images/train2017');
  const lblDir = path.join(dir, 'labels/train2017');
  for (const d of [src, imgDir, lblDir]) fs.mkdirSync(d, { recursive: true });
  // Sources: coco128's JPEGs as they are (EXIF, ICC and all), plus JPEGs drawn here at varied sizes.
  const sources = [];
  if (fs.existsSync(COCO128)) {
    for (const f of fs.readdirSync(COCO128).sort()) {
      fs.copyFileSync(path.join(COCO128, f), path.join(src, f));
      sources.push(path.join(src, f));
    }
  }
  const rand = rng(7);
  while (sources.length < 300) {
    const i = sources.length;
    const w = 240 + Math.floor(rand() * 800);
    const h = 180 + Math.floor(rand() * 600);
    const noise = await sharp({ create: { width: w, height: h, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ quality: 80 }).toBuffer();
    const f = path.join(src, `drawn-${i}.jpg`);
    fs.writeFileSync(f, noise);
    sources.push(f);
  }
  // Box counts per image: ~1% background (half without a label file, half with an empty one), the
  // rest around train2017's mean (7.3), summing to exactly `boxes`.
  const counts = new Array(images).fill(0);
  let left = boxes;
  const annotated = [];
  for (let i = 0; i < images; i++) if (rand() >= 0.01) annotated.push(i);
  for (const i of annotated) counts[i] = 1;
  left -= annotated.length;
  while (left > 0) {
    const i = annotated[Math.floor(rand() * annotated.length)];
    counts[i]++;
    left--;
  }
  const f6 = (x) => x.toFixed(6);
  for (let i = 0; i < images; i++) {
    const name = String(i + 1).padStart(12, '0');
    fs.linkSync(sources[i % sources.length], path.join(imgDir, `${name}.jpg`));
    if (counts[i] === 0 && i % 2 === 0) continue;
    let text = '';
    for (let k = 0; k < counts[i]; k++) {
      const w = 0.02 + rand() * 0.5;
      const h = 0.02 + rand() * 0.5;
      text += `${Math.floor(rand() * 80)} ${f6(w / 2 + rand() * (1 - w))} ${f6(h / 2 + rand() * (1 - h))} ${f6(w)} ${f6(h)}\n`;
    }
    fs.writeFileSync(path.join(lblDir, `${name}.txt`), text);
  }
  fs.writeFileSync(path.join(dir, 'data.yaml'), `path: .\ntrain: images/train2017\nnc: ${NAMES.length}\nnames:\n${NAMES.map((n) => `  - ${n}`).join('\n')}\n`);
  fs.writeFileSync(done, '');
}

// ---- children: one measured pass each, in its own process so that peak RSS is its own ----

async function bare(dataDir) {
  const { imageSize } = await import('image-size');
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const imgDir = path.join(dataDir, 'images/train2017');
  const lblDir = path.join(dataDir, 'labels/train2017');
  const names = fs.readdirSync(imgDir).sort();
  // The same reads the reader's read thread makes (plain synchronous open, read, close; a second
  // read when a JPEG's header is past the first 16 KiB), here in one thread, plus the parse of every
  // line: what any YOLO reader must do. The ratio is what the ingest adds (records, DuckDB, the
  // final SQL, the folder listing), less what its two threads overlap.
  const head = Buffer.allocUnsafe(16384);
  let lines = 0;
  for (const name of names) {
    const fd = fs.openSync(path.join(imgDir, name), 'r');
    let size;
    try {
      const got = fs.readSync(fd, head, 0, head.length, 0);
      try {
        size = imageSize(head.subarray(0, got));
      } catch {
        const more = Buffer.allocUnsafe(524288);
        size = imageSize(more.subarray(0, fs.readSync(fd, more, 0, more.length, 0)));
      }
    } finally {
      fs.closeSync(fd);
    }
    let text = '';
    let lfd = null;
    try {
      lfd = fs.openSync(path.join(lblDir, `${name.slice(0, -4)}.txt`), 'r');
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    if (lfd !== null) {
      try {
        text = head.toString('utf8', 0, fs.readSync(lfd, head, 0, head.length, 0));
      } finally {
        fs.closeSync(lfd);
      }
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length === 5 && Number.isFinite(Number(f[1]) + Number(f[2]) + Number(f[3]) + Number(f[4])) && size.width > 0) lines++;
    }
  }
  return { seconds: (performance.now() - t0) / 1000, cpu: cpuSince(c0), images: names.length, annotations: lines };
}

async function ingest(dataDir, dbPath) {
  const { loadSettings } = await import(path.join(ROOT, 'dist/config.js'));
  const { openDataVisor } = await import(path.join(ROOT, 'dist/services/app.js'));
  const { createLogger } = await import(path.join(ROOT, 'dist/services/logger.js'));
  const settings = loadSettings({
    DATAVISOR_DB_PATH: dbPath,
    DATAVISOR_CACHE_DIR: path.join(path.dirname(dbPath), 'thumbs'),
    DATAVISOR_PLUGIN_DIR: path.join(path.dirname(dbPath), 'no-plugins'),
    DATAVISOR_DATA_ROOTS: dataDir,
    DATAVISOR_THUMBNAILS_ON_INGEST: '0',
  });
  const dv = await openDataVisor(settings, createLogger('error'));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let last;
  let readSeconds = null;
  for await (const e of dv.ingestion.ingest({ annotationPath: path.join(dataDir, 'data.yaml'), format: 'yolo' })) {
    // The last event of the read says references are being checked: the rest is the writer's final SQL.
    if (readSeconds === null && e.message.endsWith('checking references')) readSeconds = (performance.now() - t0) / 1000;
    last = e;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(c0);
  await dv.close();
  if (last?.stage !== 'complete') throw new Error(`ingest failed: ${JSON.stringify(last)}`);
  return { seconds, cpu, readSeconds, images: last.image_count, annotations: last.annotation_count, warnings: last.warnings.map((w) => `${w.code} ${w.count}`) };
}

/**
 * CPU seconds of every thread of the process (user + system) over the same span as the wall time
 * (so not DataVisor's start-up, ~0.5 s of loading modules and opening DuckDB, as in bench/voc.mjs):
 * less at the mercy of a busy machine than wall time.
 */
function cpuSince(c0) {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

if (opts.child) {
  const r = opts.child === 'bare' ? await bare(opts.data) : await ingest(opts.data, opts.db);
  process.stdout.write(`${JSON.stringify({ ...r, rssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
  process.exit(0);
}

// ---- the driver ----
const images = Number(opts.images);
const boxes = Number(opts.boxes);
const dataDir = path.join(opts.dir, `yolo-${images}-${boxes}`);
console.error(`dataset: ${dataDir}`);
await generate(dataDir, images, boxes);

const scale = Number(opts.large);
const large = path.join(opts.dir, `yolo-${images * scale}-${boxes * scale}`);
if (scale > 0) await generate(large, images * scale, boxes * scale);

const child = (mode, db, data = dataDir) => {
  const args = [import.meta.filename, '--child', mode, '--data', data, ...(db ? ['--db', db] : [])];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1));
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const runs = Number(opts.runs);
const results = { bare: [], ingest: [], large: [] };
const ingestInto = (data) => {
  const tmp = fs.mkdtempSync(path.join(opts.dir, 'db-'));
  fs.mkdirSync(path.join(tmp, 'no-plugins'));
  try {
    return child('ingest', path.join(tmp, 'bench.duckdb'), data);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
};
// Interleaved, so that each median is taken over the same stretch of a noisy machine.
const loads = [];
for (let i = 0; i < runs; i++) {
  loads.push(os.loadavg()[0]);
  results.bare.push(child('bare'));
  results.ingest.push(ingestInto(dataDir));
  if (scale > 0) results.large.push(ingestInto(large));
  const b = results.bare.at(-1);
  const g = results.ingest.at(-1);
  const q = results.large.at(-1);
  console.error(`run ${i + 1}/${runs}: bare ${b.seconds.toFixed(2)} s (cpu ${b.cpu.toFixed(1)} s, ${b.rssMB.toFixed(0)} MB), ingest ${g.seconds.toFixed(2)} s (read ${g.readSeconds.toFixed(2)} s, cpu ${g.cpu.toFixed(1)} s, ${g.rssMB.toFixed(0)} MB)` +
    (q ? `, ${scale}× ingest ${q.seconds.toFixed(2)} s (${q.rssMB.toFixed(0)} MB)` : ''));
}
const g0 = results.ingest[0];
const b0 = results.bare[0];
if (g0.images !== b0.images || g0.annotations !== b0.annotations) throw new Error(`ingest read ${g0.images}/${g0.annotations}, bare pass ${b0.images}/${b0.annotations}`);
const base = median(results.bare.map((r) => r.seconds));
console.log(`\n${g0.images.toLocaleString('en')} images, ${g0.annotations.toLocaleString('en')} boxes; ${runs} runs, medians; ${os.cpus().length} cores, node ${process.version}`);
console.log(`ingest warnings: ${g0.warnings.join(', ') || 'none'}`);
loads.push(os.loadavg()[0]);
console.log(`load average (1 min) at each run's start and the end: ${loads.map((l) => l.toFixed(1)).join(', ')}\n`);
console.log('| pass | images | wall (s) | of which reading (s) | images/s | CPU (s, all threads) | peak RSS (MB) | wall vs bare | CPU vs bare |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const baseCpu = median(results.bare.map((r) => r.cpu));
const rows = [
  ['bare pass: every image header and label file read, every line parsed (one thread)', results.bare],
  ['datavisor ingest, thumbnails off', results.ingest],
];
if (scale > 0) rows.push([`datavisor ingest, ${scale}× the images and boxes`, results.large]);
for (const [name, rs] of rows) {
  const s = median(rs.map((r) => r.seconds));
  const cpu = median(rs.map((r) => r.cpu));
  const read = rs[0].readSeconds != null ? median(rs.map((r) => r.readSeconds)).toFixed(2) : '';
  const same = rs[0].images === g0.images;
  console.log(`| ${name} | ${rs[0].images.toLocaleString('en')} | ${s.toFixed(2)} | ${read} | ${Math.round(rs[0].images / s).toLocaleString('en')} | ${cpu.toFixed(1)} | ${median(rs.map((r) => r.rssMB)).toFixed(0)} | ${same ? `${(s / base).toFixed(2)}×` : ''} | ${same ? `${(cpu / baseCpu).toFixed(2)}×` : ''} |`);
}
const ratio = median(results.ingest.map((r) => r.seconds)) / base;
console.log(`\ntarget ≤ 1.5× the bare pass: ${ratio <= 1.5 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}×)`);
if (scale > 0) {
  const rss = median(results.large.map((r) => r.rssMB)) / median(results.ingest.map((r) => r.rssMB));
  const perImage = (median(results.large.map((r) => r.seconds)) / results.large[0].images) / (median(results.ingest.map((r) => r.seconds)) / g0.images);
  console.log(`${scale}× dataset: peak RSS ${rss.toFixed(2)}× the 1× ingest's, time per image ${perImage.toFixed(2)}×`);
}
