#!/usr/bin/env node
// A/B of an ingest between two checkouts (each built: dist/), each side through its own bench
// child, in fresh processes interleaved with the bare pass of this checkout, alternating which
// side goes first, so both see the same stretch of a noisy machine:
//   node bench/ingest-ab.mjs --base /path/to/other/checkout --format yolo|voc|coco [--runs 5] [--dir scratch]
// The datasets are the ones bench/yolo.mjs, bench/voc.mjs and bench/ingest.mjs generate (run each
// once first). CPU is of every thread; for yolo and voc over the ingest's timed span, for coco of
// the whole process (start-up included). Prints one line per run, then medians and ratios.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    format: { type: 'string', default: 'yolo' },
    runs: { type: 'string', default: '5' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
  },
});
if (!opts.base) throw new Error('--base <checkout> is required');
const BASE = path.resolve(opts.base);
const DIR = opts.dir;

const run = (args) => {
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').at(-1));
};
/** A fresh database folder for one ingest, removed after it. */
const withDb = (fn) => {
  const tmp = fs.mkdtempSync(path.join(DIR, 'db-'));
  fs.mkdirSync(path.join(tmp, 'no-plugins'));
  try {
    return fn(path.join(tmp, 'bench.duckdb'), path.join(tmp, 'no-plugins'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
};

const FORMATS = {
  yolo: () => {
    const data = path.join(DIR, 'yolo-118287-860001');
    return {
      bare: () => run([path.join(ROOT, 'bench/yolo.mjs'), '--child', 'bare', '--data', data]),
      ingest: (tree) => withDb((db) => run([path.join(tree, 'bench/yolo.mjs'), '--child', 'ingest', '--data', data, '--db', db])),
    };
  },
  voc: () => {
    const folder = path.join(DIR, 'voc-20000');
    return {
      bare: () => run([path.join(ROOT, 'bench/voc.mjs'), '--child', 'bare', folder]),
      ingest: (tree) => withDb((db) => run([path.join(tree, 'bench/voc.mjs'), '--child', 'ingest', folder, db])),
    };
  },
  coco: () => {
    const file = path.join(DIR, 'coco-118287.json');
    const images = path.join(DIR, 'empty');
    const cpu = (r) => ({ ...r, cpu: r.cpuSeconds });
    return {
      bare: () => cpu(run([path.join(ROOT, 'bench/lib/bare-pass.mjs'), file])),
      ingest: (tree) => withDb((db, plugins) => cpu(run([path.join(tree, 'bench/lib/ingest-once.mjs'), file, images, db, plugins]))),
    };
  },
};
const passes = FORMATS[opts.format]?.();
if (!passes) throw new Error(`--format: one of ${Object.keys(FORMATS).join(', ')}`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r = { bare: [], base: [], head: [] };
const loads = [];
for (let i = 0; i < Number(opts.runs); i++) {
  loads.push(os.loadavg()[0]);
  r.bare.push(passes.bare());
  // Alternating which side goes first: a machine getting busier or quieter favours neither.
  const order = i % 2 === 0 ? ['base', 'head'] : ['head', 'base'];
  for (const side of order) r[side].push(passes.ingest(side === 'base' ? BASE : ROOT));
  const f = (x) => `${x.seconds.toFixed(2)} s (cpu ${x.cpu.toFixed(2)} s, ${x.rssMB.toFixed(0)} MB)`;
  console.error(`run ${i + 1}: bare ${f(r.bare.at(-1))}, base ${f(r.base.at(-1))}, head ${f(r.head.at(-1))}`);
}
loads.push(os.loadavg()[0]);
const m = (side, k) => median(r[side].map((x) => x[k]));
console.log(`\n${opts.format}: ${opts.runs} runs, medians; base ${BASE}, head ${ROOT}; load average (1 min) at each run's start and the end: ${loads.map((l) => l.toFixed(1)).join(', ')}`);
console.log('| pass | wall (s) | CPU (s) | peak RSS (MB) | wall vs bare | CPU vs bare |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const side of ['bare', 'base', 'head']) {
  console.log(`| ${side} | ${m(side, 'seconds').toFixed(2)} | ${m(side, 'cpu').toFixed(2)} | ${m(side, 'rssMB').toFixed(0)} | ${(m(side, 'seconds') / m('bare', 'seconds')).toFixed(2)}× | ${(m(side, 'cpu') / m('bare', 'cpu')).toFixed(2)}× |`);
}
console.log(`head vs base: wall ${(m('head', 'seconds') / m('base', 'seconds')).toFixed(2)}×, CPU ${(m('head', 'cpu') / m('base', 'cpu')).toFixed(2)}×`);
