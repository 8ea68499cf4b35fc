#!/usr/bin/env node
// npm run bench:ingest [-- --runs 3 --images 118287 --large 500000 --busy-main 0.8]
//
// Ingests a train2017-scale COCO file (metadata only, thumbnails off) several times, each in a
// fresh process and database, interleaved with the bare stream-json token pass over the same
// file, and prints medians: wall seconds, MB/s, peak RSS, and the ratio to the bare pass.
// Each run also ingests with plugins/example loaded; with --large N, a file of N images is
// ingested as many times after them, to check that memory stays flat and time grows linearly. With
// --busy-main F, each run also ingests with its main thread kept busy a fraction F of the time (the
// writer slowed on purpose), to check that peak RSS does not grow with a slow consumer. Files are generated once into the scratch
// folder (default: $DATAVISOR_BENCH_DIR or <tmp>/datavisor-bench), never into the repo.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const GEN = path.resolve(ROOT, '../shared/bench/gen-coco.mjs');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    images: { type: 'string', default: '118287' },
    large: { type: 'string', default: '0' },
    'busy-main': { type: 'string', default: '0' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
  },
});
const runs = Number(opts.runs);
fs.mkdirSync(opts.dir, { recursive: true });
const emptyDir = path.join(opts.dir, 'empty');
fs.mkdirSync(emptyDir, { recursive: true });

function ensureFile(images) {
  const file = path.join(opts.dir, `coco-${images}.json`);
  if (!fs.existsSync(file)) {
    console.error(`generating ${file} …`);
    execFileSync(process.execPath, [GEN, '--images', String(images), '--out', file], { stdio: 'inherit' });
  }
  return file;
}

function node(script, args, env = {}) {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bench/lib', script), ...args], { encoding: 'utf8', maxBuffer: 1 << 20, env: { ...process.env, ...env } });
  return JSON.parse(out.trim().split('\n').at(-1));
}

function ingest(file, pluginDir, env = {}) {
  const db = path.join(fs.mkdtempSync(path.join(opts.dir, 'db-')), 'bench.duckdb');
  try {
    return node('ingest-once.mjs', [file, emptyDir, db, pluginDir], env);
  } finally {
    fs.rmSync(path.dirname(db), { recursive: true, force: true });
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const file = ensureFile(Number(opts.images));
const sizeMB = fs.statSync(file).size / 1e6;
const bare = [];
const plain = [];
const withPlugin = [];
const busyMain = Number(opts['busy-main']);
const slowed = [];
// Interleaved, so that each median is taken over the same stretch of a noisy machine.
for (let i = 0; i < runs; i++) {
  bare.push(node('bare-pass.mjs', [file]));
  plain.push(ingest(file, emptyDir));
  withPlugin.push(ingest(file, path.join(ROOT, 'plugins')));
  if (busyMain > 0) slowed.push(ingest(file, emptyDir, { DATAVISOR_BENCH_BUSY_MAIN: String(busyMain) }));
  console.error(
    `run ${i + 1}/${runs}: bare ${bare.at(-1).seconds.toFixed(2)} s, ingest ${plain.at(-1).seconds.toFixed(2)} s ` +
      `(${plain.at(-1).rssMB.toFixed(0)} MB), with plugin ${withPlugin.at(-1).seconds.toFixed(2)} s` +
      (busyMain > 0 ? `, main thread busy ${slowed.at(-1).seconds.toFixed(2)} s (${slowed.at(-1).rssMB.toFixed(0)} MB)` : ''),
  );
}

const rows = [];
const row = (name, results, images) => {
  const s = median(results.map((r) => r.seconds));
  rows.push({ name, images, seconds: s, mbps: sizeMB / s, rss: median(results.map((r) => r.rssMB)) });
};
row('bare stream-json token pass (baseline)', bare, Number(opts.images));
row('datavisor ingest, no plugin', plain, plain[0].images);
row('datavisor ingest, plugins/example loaded', withPlugin, withPlugin[0].images);
if (busyMain > 0) row(`datavisor ingest, main thread busy ${Math.round(busyMain * 100)}% of the time`, slowed, slowed[0].images);

let large = null;
if (Number(opts.large) > 0) {
  const lf = ensureFile(Number(opts.large));
  const lr = [];
  for (let i = 0; i < runs; i++) lr.push(ingest(lf, emptyDir));
  const s = median(lr.map((r) => r.seconds));
  large = { images: lr[0].images, mb: fs.statSync(lf).size / 1e6, seconds: s, rss: median(lr.map((r) => r.rssMB)) };
  rows.push({ name: `datavisor ingest, ${opts.large}-image file`, images: large.images, seconds: s, mbps: large.mb / s, rss: large.rss });
}

const base = rows[0];
console.log(`\nfile: ${path.basename(file)} (${sizeMB.toFixed(1)} MB, ${plain[0].images} images, ${plain[0].annotations} annotations); ${runs} runs, medians; ${os.cpus().length} cores, node ${process.version}\n`);
console.log('| pass | images | wall (s) | MB/s | peak RSS (MB) | vs bare pass |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.images.toLocaleString('en')} | ${r.seconds.toFixed(2)} | ${r.mbps.toFixed(0)} | ${r.rss.toFixed(0)} | ${(r.seconds / base.seconds).toFixed(2)}× |`);
}
const plugin = rows[2].seconds / rows[1].seconds;
console.log(`\nexample plugin slowdown: ${((plugin - 1) * 100).toFixed(1)}% (${rows[2].seconds.toFixed(2)} s vs ${rows[1].seconds.toFixed(2)} s)`);
if (large) {
  const perImage = (large.seconds / large.images) / (rows[1].seconds / rows[1].images);
  console.log(`large file: time per image ${perImage.toFixed(2)}× the ${opts.images}-image file's; peak RSS ${(large.rss / rows[1].rss).toFixed(2)}× (target ≤ 1.15×)`);
}
if (busyMain > 0) console.log(`main thread busy: peak RSS ${(rows[3].rss / rows[1].rss).toFixed(2)}× the ingest's (${rows[3].rss.toFixed(0)} vs ${rows[1].rss.toFixed(0)} MB)`);
console.log(`targets: ingest < 8 s (${rows[1].seconds < 8 ? 'met' : 'MISSED'}), ≤ 1.5× bare (${rows[1].seconds / base.seconds <= 1.5 ? 'met' : 'MISSED'}), RSS < 350 MB (${rows[1].rss < 350 ? 'met' : 'MISSED'})`);
