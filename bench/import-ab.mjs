// A/B of the train2017-scale prediction import between two checkouts (each built: dist/), in
// fresh processes interleaved with the bare token pass over the same file, so each ratio is
// against a baseline measured in the same run and both sides see the same load:
//   node bench/import-ab.mjs --base /path/to/other/checkout [--runs 3] [--dir scratch]
// Uses bench/eval.mjs's scratch (<dir>/eval/db-train/gt.duckdb and the results file it made:
// run `npm run bench:eval` once first). Prints one JSON line per run, then the medians.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
    results: { type: 'string', default: 'preds-118287-s1-s2.json' },
  },
});
if (!opts.base) throw new Error('--base <checkout> is required');
const DIR = path.join(opts.dir, 'eval');
const gtDb = path.join(DIR, 'db-train', 'gt.duckdb');
const results = path.join(DIR, opts.results);
const runDb = path.join(DIR, 'db-train', 'ab.duckdb');

const node = (args) =>
  JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1));
const importWith = (checkout) => {
  for (const ext of ['', '.wal']) {
    fs.rmSync(runDb + ext, { force: true });
    if (fs.existsSync(gtDb + ext)) fs.copyFileSync(gtDb + ext, runDb + ext);
  }
  const job = { job: 'import', dataDir: DIR, db: runDb, resultsPath: results, name: 'run', split: true };
  return node([path.join(checkout, 'bench/lib/eval-job.mjs'), JSON.stringify(job)]);
};

const rows = { bare: [], base: [], new: [] };
for (let i = 0; i < Number(opts.runs); i++) {
  const load = os.loadavg()[0];
  const bare = node([path.join(ROOT, 'bench/lib/bare-pass.mjs'), results]);
  // Alternate which side goes first, so neither always follows the other.
  const order = i % 2 === 0 ? ['base', 'new'] : ['new', 'base'];
  const out = {};
  for (const side of order) out[side] = importWith(side === 'base' ? path.resolve(opts.base) : ROOT);
  rows.bare.push(bare);
  rows.base.push(out.base);
  rows.new.push(out.new);
  console.log(JSON.stringify({ run: i + 1, load: Number(load.toFixed(1)), bare: bare.seconds, base: out.base, new: out.new }));
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const summary = (rs) => ({
  seconds: med(rs.map((r) => r.seconds)),
  mainCpuSeconds: med(rs.map((r) => r.mainCpuSeconds)),
  cpuSeconds: med(rs.map((r) => r.cpuSeconds)),
  peakMB: Math.round(med(rs.map((r) => r.peakMB))),
});
const bare = { seconds: med(rows.bare.map((r) => r.seconds)), cpuSeconds: med(rows.bare.map((r) => r.cpuSeconds)), rssMB: med(rows.bare.map((r) => r.rssMB)) };
const base = summary(rows.base);
const next = summary(rows.new);
console.log(JSON.stringify({ medians: { bare, base, new: next }, ratioToBare: { base: base.seconds / bare.seconds, new: next.seconds / bare.seconds }, loadAfter: os.loadavg()[0] }));
