#!/usr/bin/env node
// npm run bench:eval [-- --runs 3 --repeat 2 --train-runs 1 --no-train --dir DIR]
//
// Prediction runs and their COCO evaluation through the service (dv.predictions.import,
// dv.evaluations.evaluate), against the engine alone (bench/eval-engine.mjs's child, same run) and,
// for the import, the bare stream-json token pass over the same results file (bench/lib/bare-pass.mjs).
// Three cases, their inputs generated once into <dir>/eval (default dir: $DATAVISOR_BENCH_DIR or
// <tmp>/datavisor-bench), never into the repo:
//   bbox   val2017 scale: gen-coco.mjs --images 5000 --seed 1, gen-preds.py --seed 2
//          (5,000 images, 36,352 GT, 96,892 detections);
//   segm   1,000 images: gen-coco.mjs --images 1000 --seed 23 (the shared segm-300 case's seed) and
//          mask results from bench/lib/gen-segm-results.mjs --seed 8, ingested with storeShapes;
//   train  train2017 scale: gen-coco.mjs --images 118287 --seed 1, gen-preds.py --seed 2
//          (860,001 GT, ~2.3M detections).
// Each case's ground truth is ingested once per bench run into a fresh database and its results
// imported once; the evaluations then run on that same dataset and run, each in a fresh process
// (bench/lib/eval-job.mjs): the first evaluate() of a process is "cold" (the JIT still compiling: a
// CLI run or a server's first evaluation), the --repeat next ones "warm"; their rows are deleted
// after each. Engine and service runs are interleaved, medians over --runs processes. Memory: the
// kernel's peak RSS during the evaluate() call alone (VmHWM reset just before it) against the RSS
// it started from. Where the time goes comes from one more process per case with the service's
// methods wrapped with timestamps from outside (bench/lib/eval-split.mjs, import-split.mjs); the
// train2017-scale runs are always split that way (the wrappers cost a few calls per image).
// pycocotools cannot be installed here: its 13–15 s for the val2017-scale case is issue 16's figure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '2' },
    'train-runs': { type: 'string', default: '1' },
    'no-train': { type: 'boolean', default: false },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
  },
});
const RUNS = Number(opts.runs);
const REPEAT = Number(opts.repeat);
const TRAIN_RUNS = Number(opts['train-runs']);
const DIR = path.join(opts.dir, 'eval');
fs.mkdirSync(DIR, { recursive: true });

const loads = [];
const noteLoad = () => loads.push(os.loadavg()[0]);

function node(args, nodeArgs = []) {
  noteLoad();
  const out = execFileSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').at(-1));
}
const job = (j) => node([path.join(ROOT, 'bench/lib/eval-job.mjs'), JSON.stringify({ dataDir: DIR, ...j })]);
const engine = (iouType, c) =>
  node([path.join(ROOT, 'bench/eval-engine.mjs'), '--child', iouType, '--gt', c.gt, '--results', c.results, '--repeat', String(REPEAT)], ['--expose-gc']);
const bare = (file) => node([path.join(ROOT, 'bench/lib/bare-pass.mjs'), file]);

function generate(file, make) {
  if (fs.existsSync(file)) return file;
  console.error(`generating ${file} …`);
  const part = `${file}.part`;
  make(part);
  fs.renameSync(part, file);
  return file;
}
const gtFile = (images, seed) =>
  generate(path.join(DIR, `gt-${images}-s${seed}.json`), (out) =>
    execFileSync(process.execPath, [path.join(SHARED, 'bench/gen-coco.mjs'), '--images', String(images), '--seed', String(seed), '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] }),
  );
/** gt-5000-s1.json → preds-5000-s1-s2.json for seed 2. */
const resultsName = (prefix, gt, seed) => `${prefix}-${path.basename(gt, '.json').replace(/^gt-/, '')}-s${seed}.json`;
const bboxResults = (gt, seed) =>
  generate(path.join(DIR, resultsName('preds', gt, seed)), (out) =>
    execFileSync('python3', [path.join(SHARED, 'bench/gen-preds.py'), gt, out, '--seed', String(seed)], { stdio: ['ignore', 'ignore', 'inherit'] }),
  );
const segmResults = (gt, seed) =>
  generate(path.join(DIR, resultsName('segm', gt, seed)), (out) =>
    execFileSync(process.execPath, [path.join(ROOT, 'bench/lib/gen-segm-results.mjs'), gt, out, '--seed', String(seed)], { stdio: ['ignore', 'ignore', 'inherit'] }),
  );

function copyDb(from, to) {
  for (const ext of ['', '.wal']) {
    fs.rmSync(to + ext, { force: true });
    if (fs.existsSync(from + ext)) fs.copyFileSync(from + ext, to + ext);
  }
}

/** The ground truth ingested into <dir>/eval/db-<name>/gt.duckdb, then the results imported into a copy of it. */
function prepare(name, c, { storeShapes, importSplit = false }) {
  const dbDir = path.join(DIR, `db-${name}`);
  fs.rmSync(dbDir, { recursive: true, force: true });
  fs.mkdirSync(dbDir);
  const gtDb = path.join(dbDir, 'gt.duckdb');
  const ingest = job({ job: 'ingest', db: gtDb, annotationPath: c.gt, storeShapes });
  const runDb = path.join(dbDir, 'run.duckdb');
  copyDb(gtDb, runDb);
  const imported = job({ job: 'import', db: runDb, resultsPath: c.results, name: 'run', split: importSplit });
  console.error(`${name}: ingested ${ingest.annotations} GT in ${ingest.seconds.toFixed(2)} s, imported ${imported.predictions} predictions in ${imported.seconds.toFixed(2)} s`);
  return { gtDb, runDb, ingest, imported };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const med = (rs, f) => median(rs.map(f));

/** Engine and service runs of one case, interleaved; then one split process. */
function evaluateCase(name, iouType, c, runDb) {
  const engineRuns = [];
  const serviceRuns = [];
  for (let i = 0; i < RUNS; i++) {
    engineRuns.push(engine(iouType, c));
    serviceRuns.push(job({ job: 'evaluate', db: runDb, name: 'run', iouType, times: 1 + REPEAT }));
    const [e, s] = [engineRuns.at(-1), serviceRuns.at(-1).runs[0]];
    console.error(`${name} run ${i + 1}/${RUNS}: engine cold ${(e.cold.totalMs / 1000).toFixed(2)} s, service cold ${s.seconds.toFixed(2)} s ` +
      `(CPU ${s.mainCpuSeconds.toFixed(2)} main / ${s.cpuSeconds.toFixed(2)} process; RSS ${s.beforeMB.toFixed(0)} → ${s.peakMB.toFixed(0)} MB); load ${os.loadavg()[0].toFixed(1)}`);
  }
  const split = job({ job: 'evaluate', db: runDb, name: 'run', iouType, times: 1 + REPEAT, split: true });
  return { engineRuns, serviceRuns, split };
}

/** Medians of a service case: cold = first evaluate of each process, warm = median of the others. */
function serviceSummary(serviceRuns) {
  const cold = serviceRuns.map((r) => r.runs[0]);
  const warm = serviceRuns.map((r) => ({
    seconds: median(r.runs.slice(1).map((x) => x.seconds)),
    mainCpuSeconds: median(r.runs.slice(1).map((x) => x.mainCpuSeconds)),
    cpuSeconds: median(r.runs.slice(1).map((x) => x.cpuSeconds)),
    peakMB: Math.max(...r.runs.slice(1).map((x) => x.peakMB)),
    beforeMB: r.runs[1]?.beforeMB ?? NaN,
  }));
  const pick = (rs) => ({
    seconds: med(rs, (r) => r.seconds),
    best: Math.min(...rs.map((r) => r.seconds)),
    mainCpu: med(rs, (r) => r.mainCpuSeconds),
    cpu: med(rs, (r) => r.cpuSeconds),
    beforeMB: med(rs, (r) => r.beforeMB),
    peakMB: med(rs, (r) => r.peakMB),
    growthMB: med(rs, (r) => r.peakMB - r.beforeMB),
  });
  return { cold: pick(cold), warm: REPEAT > 0 ? pick(warm) : null };
}

function engineSummary(engineRuns) {
  return {
    cold: { seconds: med(engineRuns, (r) => r.cold.totalMs) / 1000, mainCpu: med(engineRuns, (r) => r.cold.mainCpuMs) / 1000, cpu: med(engineRuns, (r) => r.cold.cpuMs) / 1000 },
    warm: {
      seconds: med(engineRuns, (r) => median(r.warmMs)) / 1000,
      mainCpu: med(engineRuns, (r) => median(r.warmMainCpuMs)) / 1000,
      cpu: med(engineRuns, (r) => median(r.warmCpuMs)) / 1000,
    },
    growthMB: med(engineRuns, (r) => r.peakGrowthBytes) / 2 ** 20,
    maxRssMB: med(engineRuns, (r) => r.maxRssBytes) / 2 ** 20,
    perDetectionBytes: med(engineRuns, (r) => r.retainedPerDetection),
  };
}

// ---------------------------------------------------------------------------------------------
noteLoad();
const started = new Date();
const val = { gt: gtFile(5000, 1) };
val.results = bboxResults(val.gt, 2);
const segm = { gt: gtFile(1000, 23) };
segm.results = segmResults(segm.gt, 8);
const train = opts['no-train'] ? null : { gt: gtFile(118287, 1) };
if (train) train.results = bboxResults(train.gt, 2);

const valDb = prepare('val', val, { storeShapes: false });
const segmDb = prepare('segm', segm, { storeShapes: true });
const valRuns = evaluateCase('bbox val2017-scale', 'bbox', val, valDb.runDb);
const segmRuns = evaluateCase('segm 1,000 images', 'segm', segm, segmDb.runDb);

let trainOut = null;
if (train) {
  const dbDir = path.join(DIR, 'db-train');
  fs.rmSync(dbDir, { recursive: true, force: true });
  fs.mkdirSync(dbDir);
  const gtDb = path.join(dbDir, 'gt.duckdb');
  const ingest = job({ job: 'ingest', db: gtDb, annotationPath: train.gt, storeShapes: false });
  console.error(`train: ingested ${ingest.annotations} GT in ${ingest.seconds.toFixed(2)} s`);
  const runDb = path.join(dbDir, 'run.duckdb');
  const bareRuns = [];
  const importRuns = [];
  for (let i = 0; i < TRAIN_RUNS; i++) {
    bareRuns.push(bare(train.results));
    copyDb(gtDb, runDb);
    importRuns.push(job({ job: 'import', db: runDb, resultsPath: train.results, name: 'run', split: true }));
    console.error(`train import ${i + 1}/${TRAIN_RUNS}: bare ${bareRuns.at(-1).seconds.toFixed(2)} s, import ${importRuns.at(-1).seconds.toFixed(2)} s; load ${os.loadavg()[0].toFixed(1)}`);
  }
  const evalRuns = [];
  for (let i = 0; i < TRAIN_RUNS; i++) {
    evalRuns.push(job({ job: 'evaluate', db: runDb, name: 'run', iouType: 'bbox', times: 1, split: true }));
    console.error(`train evaluate ${i + 1}/${TRAIN_RUNS}: ${evalRuns.at(-1).runs[0].seconds.toFixed(2)} s; load ${os.loadavg()[0].toFixed(1)}`);
  }
  trainOut = { ingest, bareRuns, importRuns, evalRuns };
}
noteLoad();

// ---------------------------------------------------------------------------------------------
const fmtS = (s) => `${s.toFixed(2)} s`;
const fmtMB = (mb) => `${mb.toFixed(0)} MB`;
const ok = (b) => (b ? '✓' : '✗');
const n = (x) => x.toLocaleString('en');
const lines = [];
const out = (s = '') => lines.push(s);

const vS = serviceSummary(valRuns.serviceRuns);
const vE = engineSummary(valRuns.engineRuns);
const sS = serviceSummary(segmRuns.serviceRuns);
const sE = engineSummary(segmRuns.engineRuns);
const valDets = valRuns.serviceRuns[0].predictions;
const segmDets = segmRuns.serviceRuns[0].predictions;

out(`${os.cpus().length} cores, node ${process.version}; ${started.toISOString()}; load average (1 min) ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} over the run; ` +
  `${RUNS} fresh processes per service and engine row (medians), each: 1 cold + ${REPEAT} warm evaluations`);
out(`bbox case: ${n(valDb.ingest.images)} images, ${n(valDb.ingest.annotations)} GT, ${n(valDets)} detections; ` +
  `segm case: ${n(segmDb.ingest.images)} images, ${n(segmDb.ingest.annotations)} GT (polygons, storeShapes), ${n(segmDets)} masks`);
out();
out('| pass | wall | main-thread CPU | process CPU | RSS before → peak (growth) | vs baseline | target |');
out('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
out(`| pycocotools evaluate+accumulate+summarize, bbox val2017 scale (issue 16's figure, not measured here) | 13–15 s | | | | | |`);
const engineRow = (label, e, which) =>
  out(`| ${label} | ${fmtS(e[which].seconds)} | ${fmtS(e[which].mainCpu)} | ${fmtS(e[which].cpu)} | ${which === 'cold' ? `max ${fmtMB(e.maxRssMB)} (heap+buffers +${e.growthMB.toFixed(0)} MB)` : ''} | baseline | |`);
const serviceRow = (label, s, e, which, target) =>
  out(`| ${label} | ${fmtS(s[which].seconds)} (best ${fmtS(s[which].best)}) | ${fmtS(s[which].mainCpu)} | ${fmtS(s[which].cpu)} | ` +
    `${fmtMB(s[which].beforeMB)} → ${fmtMB(s[which].peakMB)} (+${s[which].growthMB.toFixed(0)} MB) | ` +
    `${(s[which].seconds / e[which].seconds).toFixed(2)}× wall, ${(s[which].mainCpu / e[which].mainCpu).toFixed(2)}× main CPU | ${target ?? ''} |`);
engineRow('bbox val2017 scale: engine alone (bench/eval-engine.mjs), cold', vE, 'cold');
serviceRow('bbox val2017 scale: `dv.evaluations.evaluate`, cold (1st in a process)', vS, vE, 'cold',
  `< 1.0 s ${ok(vS.cold.seconds < 1)}, growth < 150 MB ${ok(vS.cold.growthMB < 150)}; pycocotools / this: ${(13 / vS.cold.seconds).toFixed(1)}–${(15 / vS.cold.seconds).toFixed(1)}×`);
if (REPEAT > 0) {
  engineRow('bbox val2017 scale: engine alone, warm', vE, 'warm');
  serviceRow('bbox val2017 scale: `dv.evaluations.evaluate`, warm', vS, vE, 'warm', `< 1.0 s ${ok(vS.warm.seconds < 1)}, growth < 150 MB ${ok(vS.warm.growthMB < 150)}`);
}
engineRow('segm 1,000 images: engine alone, cold', sE, 'cold');
serviceRow('segm 1,000 images: `dv.evaluations.evaluate`, cold', sS, sE, 'cold', 'report');
if (REPEAT > 0) {
  engineRow('segm 1,000 images: engine alone, warm', sE, 'warm');
  serviceRow('segm 1,000 images: `dv.evaluations.evaluate`, warm', sS, sE, 'warm', 'report');
}
out(`| bbox val2017 scale: \`dv.predictions.import\` (one run) | ${fmtS(valDb.imported.seconds)} | ${fmtS(valDb.imported.mainCpuSeconds)} | ${fmtS(valDb.imported.cpuSeconds)} | ` +
  `${fmtMB(valDb.imported.beforeMB)} → ${fmtMB(valDb.imported.peakMB)} | | |`);
out(`| segm 1,000 images: \`dv.predictions.import\` (one run) | ${fmtS(segmDb.imported.seconds)} | ${fmtS(segmDb.imported.mainCpuSeconds)} | ${fmtS(segmDb.imported.cpuSeconds)} | ` +
  `${fmtMB(segmDb.imported.beforeMB)} → ${fmtMB(segmDb.imported.peakMB)} | | |`);

if (trainOut) {
  const { bareRuns, importRuns, evalRuns } = trainOut;
  const b = { seconds: med(bareRuns, (r) => r.seconds), cpu: med(bareRuns, (r) => r.cpuSeconds), rss: med(bareRuns, (r) => r.rssMB) };
  const imp = { seconds: med(importRuns, (r) => r.seconds), main: med(importRuns, (r) => r.mainCpuSeconds), cpu: med(importRuns, (r) => r.cpuSeconds), before: med(importRuns, (r) => r.beforeMB), peak: med(importRuns, (r) => r.peakMB) };
  const ev = evalRuns.map((r) => r.runs[0]);
  const e = { seconds: med(ev, (r) => r.seconds), main: med(ev, (r) => r.mainCpuSeconds), cpu: med(ev, (r) => r.cpuSeconds), before: med(ev, (r) => r.beforeMB), peak: med(ev, (r) => r.peakMB) };
  const trainDets = importRuns[0].predictions;
  const perDet = (s, dets) => (s / dets) * 1e6;
  const ratio = perDet(e.seconds, trainDets) / perDet(vS.cold.seconds, valDets);
  const cpuRatio = perDet(e.main, trainDets) / perDet(vS.cold.mainCpu, valDets);
  const mb = fs.statSync(train.results).size / 1e6;
  const runs = TRAIN_RUNS === 1 ? 'one run' : `medians of ${TRAIN_RUNS}`;
  out(`| train2017 scale: bare stream-json token pass over the results file (${mb.toFixed(0)} MB) | ${fmtS(b.seconds)} | | ${fmtS(b.cpu)} | max ${fmtMB(b.rss)} | baseline | |`);
  out(`| train2017 scale: \`dv.predictions.import\`, ${n(trainDets)} detections (${runs}) | ${fmtS(imp.seconds)} | ${fmtS(imp.main)} | ${fmtS(imp.cpu)} | ` +
    `${fmtMB(imp.before)} → ${fmtMB(imp.peak)} | ${(imp.seconds / b.seconds).toFixed(2)}× wall, ${(imp.cpu / b.cpu).toFixed(2)}× process CPU | ≤ 1.5× ${ok(imp.seconds / b.seconds <= 1.5)} |`);
  out(`| train2017 scale: \`dv.evaluations.evaluate\`, cold (${runs}, ${n(trainOut.ingest.annotations)} GT) | ${fmtS(e.seconds)} | ${fmtS(e.main)} | ${fmtS(e.cpu)} | ` +
    `${fmtMB(e.before)} → ${fmtMB(e.peak)} (+${(e.peak - e.before).toFixed(0)} MB) | ${ratio.toFixed(2)}× wall, ${cpuRatio.toFixed(2)}× main CPU per detection vs bbox val2017 cold | ≤ 1.2× per detection ${ok(ratio <= 1.2)} |`);
  out();
  out(`train2017 scale per detection: ${perDet(e.seconds, trainDets).toFixed(1)} µs wall (${perDet(e.main, trainDets).toFixed(1)} µs main-thread CPU) against ` +
    `${perDet(vS.cold.seconds, valDets).toFixed(1)} µs (${perDet(vS.cold.mainCpu, valDets).toFixed(1)} µs) at val2017 scale, cold` +
    (vS.warm ? ` and ${perDet(vS.warm.seconds, valDets).toFixed(1)} µs (${perDet(vS.warm.mainCpu, valDets).toFixed(1)} µs) warm: ` +
      `${(perDet(e.seconds, trainDets) / perDet(vS.warm.seconds, valDets)).toFixed(2)}× wall, ${(perDet(e.main, trainDets) / perDet(vS.warm.mainCpu, valDets)).toFixed(2)}× main CPU against warm` : ''));
  const is = importRuns.at(-1).split;
  out(`train2017 import, where the wall time went (ms; bench/lib/import-split.mjs): ${JSON.stringify(is)}`);
  out(`train2017 evaluate, where the wall time went (ms; bench/lib/eval-split.mjs): ${JSON.stringify(evalRuns.at(-1).runs[0].split)}`);
}
out();
for (const [label, r] of [['bbox val2017', valRuns.split], ['segm 1,000', segmRuns.split]]) {
  out(`${label} evaluate, where the wall time went (ms; one more process, wrapped; bench/lib/eval-split.mjs): cold ${JSON.stringify(r.runs[0].split)}`);
  if (r.runs.length > 1) out(`${label} evaluate, the same, warm (last of the process): ${JSON.stringify(r.runs.at(-1).split)}`);
}
out();
out(`engine alone keeps ${vE.perDetectionBytes.toFixed(1)} B per evaluated detection between images (bbox val2017, live after GC)`);

console.log(`\n${lines.join('\n')}`);
const saved = path.join(DIR, `eval-bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(saved, JSON.stringify({ started, loads, val: { db: valDb, ...valRuns }, segm: { db: segmDb, ...segmRuns }, train: trainOut }, null, 1));
console.log(`\nraw results: ${saved}`);
