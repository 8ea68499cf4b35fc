#!/usr/bin/env node
// npm run build && node bench/eval-engine.mjs [--runs 5] [--images 5000] [--repeat 3] [--dir DIR]
//
// Times the COCO evaluation engine (dist/services/evaluation) the way the server drives it: one
// image at a time, COCO rows turned into engine inputs (loadRes / annToRLE rules), addImage, then
// finish() (accumulate + summarize). Two cases:
//   bbox  a val2017-scale case: ../shared/bench/gen-coco.mjs --images 5000 --seed 1, results from
//         gen-preds.py --seed 2 (~36K GT, ~97K detections);
//   segm  the reference segm-300 case (../shared/eval-reference/segm-300, 2,181 GT, 4,345 masks).
// Each run is a fresh process: it reads and parses the files (timed apart, not part of the engine),
// evaluates once cold (first call: the JIT is still warming up), then --repeat times warm. Wall time,
// the main thread's CPU time (Linux) and the process's are printed, medians over the runs and the
// best run: on a busy machine wall time mostly measures the other processes, the main thread's CPU
// time what the evaluation costs on an idle core. Memory: heap + array buffers sampled 20 times and after
// finish, against the level after parsing and a GC (peak growth), and, in a last pass with a GC at
// each sample, what the evaluator keeps between images (retained growth per evaluated detection).
// Inputs are generated once into --dir (default $DATAVISOR_BENCH_DIR or <tmp>/datavisor-eval-bench),
// never into the repo.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    images: { type: 'string', default: '5000' },
    repeat: { type: 'string', default: '3' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-eval-bench') },
    child: { type: 'string' },
    gt: { type: 'string' },
    results: { type: 'string' },
  },
});

if (opts.child) await child(opts.child, opts.gt, opts.results, Number(opts.repeat));
else parent();

function parent() {
  fs.mkdirSync(opts.dir, { recursive: true });
  const cases = [
    { name: 'bbox', iouType: 'bbox', ...bboxInputs(Number(opts.images)) },
    { name: 'segm', iouType: 'segm', ...segmInputs() },
  ];
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const c of cases) {
    const runs = [];
    for (let r = 0; r < Number(opts.runs); r++) {
      const out = execFileSync(
        process.execPath,
        ['--expose-gc', import.meta.filename, '--child', c.iouType, '--gt', c.gt, '--results', c.results, '--repeat', opts.repeat],
        { encoding: 'utf8', maxBuffer: 1 << 20 },
      );
      runs.push(JSON.parse(out));
    }
    report(c.name, runs);
  }
  console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

function bboxInputs(images) {
  const gt = path.join(opts.dir, `gt-${images}-s1.json`);
  const results = path.join(opts.dir, `preds-${images}-s1-s2.json`);
  if (!fs.existsSync(gt)) execFileSync(process.execPath, [path.join(SHARED, 'bench/gen-coco.mjs'), '--images', String(images), '--seed', '1', '--out', gt], { stdio: 'inherit' });
  if (!fs.existsSync(results)) execFileSync('python3', [path.join(SHARED, 'bench/gen-preds.py'), gt, results, '--seed', '2'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { gt, results };
}

function segmInputs() {
  const files = {};
  for (const [key, name] of [['gt', 'gt-segm.json'], ['results', 'segm.json']]) {
    files[key] = path.join(opts.dir, name);
    if (!fs.existsSync(files[key])) {
      fs.writeFileSync(files[key], zlib.gunzipSync(fs.readFileSync(path.join(SHARED, 'eval-reference/segm-300', `${name}.gz`))));
    }
  }
  return files;
}

/**
 * CPU time of the main thread alone (Linux, 10 ms ticks): the evaluation's own critical path, without
 * the compiler and GC helper threads that process CPU time also counts.
 */
function mainThreadCpuMs() {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, fields 14 and 15
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function report(name, runs) {
  const m = (f) => median(runs.map(f));
  const best = (f) => Math.min(...runs.map(f));
  const first = runs[0];
  const ms = (x) => `${x.toFixed(0)} ms`;
  const mb = (x) => `${(x / 1e6).toFixed(1)} MB`;
  const both = (f) => `${ms(m(f))} (best ${ms(best(f))})`;
  console.log(`\n${name}: ${first.images} images, ${first.gts} GT, ${first.detections} detections (${first.evaluated} evaluated); ${runs.length} processes`);
  console.log(`  read files            ${ms(m((r) => r.readMs))}`);
  console.log(`  JSON.parse            ${ms(m((r) => r.parseMs))}`);
  console.log(`  group rows by image   ${ms(m((r) => r.groupMs))} (the caller's part)`);
  console.log(`  engine, warm          wall ${both((r) => median(r.warmMs))}, main thread CPU ${both((r) => median(r.warmMainCpuMs))}, process CPU ${both((r) => median(r.warmCpuMs))}`);
  console.log(`  engine, cold (1st)    wall ${both((r) => r.cold.totalMs)}, main thread CPU ${both((r) => r.cold.mainCpuMs)}, process CPU ${both((r) => r.cold.cpuMs)}`);
  const p = (key) => ms(m((r) => r.cold[key]));
  console.log(`    cold, wall split    rows→inputs ${p('convertMs')}, addImage ${p('addMs')}, finish ${p('finishMs')}`);
  console.log(`  memory, peak growth   ${mb(m((r) => r.peakGrowthBytes))} (heap + array buffers, sampled; baseline = parsed inputs after GC)`);
  // The log grows by chunks of 16,384 records: a slope needs several of them.
  const retained =
    first.evaluated < 4 * 16384
      ? 'too few detections to see the per-detection slope (the log grows by 16,384 records)'
      : `${m((r) => r.retainedPerDetection).toFixed(1)} B per evaluated detection kept between images (live after GC, first sample to last: ${mb(m((r) => r.retainedGrowthBytes))})`;
  console.log(`  memory, retained      ${retained}`);
  console.log(`  process max RSS       ${mb(m((r) => r.maxRssBytes))} (parse included)`);
}

async function child(iouType, gtFile, resultsFile, repeat) {
  const { CocoEvaluator, detectionFromCoco, groundTruthFromCoco, resultAreaSource } = await import(path.join(ROOT, 'dist/services/evaluation/index.js'));
  let t = performance.now();
  const gtText = fs.readFileSync(gtFile, 'utf8');
  const resultsText = fs.readFileSync(resultsFile, 'utf8');
  const readMs = performance.now() - t;
  t = performance.now();
  const gt = JSON.parse(gtText);
  const results = JSON.parse(resultsText);
  const parseMs = performance.now() - t;
  // Grouping rows by image is the caller's job (the server reads them in image order from DuckDB).
  t = performance.now();
  const images = new Map(gt.images.map((im) => [im.id, im]));
  const anns = new Map();
  for (const a of gt.annotations) (anns.get(a.image_id) ?? anns.set(a.image_id, []).get(a.image_id)).push(a);
  const dets = new Map();
  results.forEach((r, i) => (dets.get(r.image_id) ?? dets.set(r.image_id, []).get(r.image_id)).push(i));
  const imageIds = [...images.keys()].sort((a, b) => a - b);
  const sampleEvery = Math.ceil(imageIds.length / 20);
  const groupMs = performance.now() - t;
  const used = () => {
    const u = process.memoryUsage();
    return u.heapUsed + u.arrayBuffers;
  };
  /** Live bytes after a full GC and a pause, which lets V8 release array buffers it swept. */
  const settledUsage = async () => {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    globalThis.gc();
    return used();
  };
  const baseline = await settledUsage();
  let peak = baseline;

  /** One evaluation, as the server streams it; `sample(evaluatedSoFar)` runs 20 times on the way. */
  async function evaluate(sample) {
    const m0 = mainThreadCpuMs();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const areaSource = resultAreaSource(results[0]);
    const ev = new CocoEvaluator({ iouType, categoryIds: gt.categories.map((c) => c.id) });
    let convertMs = 0;
    let addMs = 0;
    let n = 0;
    let evaluated = 0;
    for (const id of imageIds) {
      const a = anns.get(id) ?? [];
      const d = dets.get(id) ?? [];
      if (a.length === 0 && d.length === 0) continue;
      const image = images.get(id);
      const s = performance.now();
      const gts = a.map((x) => groundTruthFromCoco(x, iouType, image));
      const dts = d.map((i) => detectionFromCoco(results[i], i, iouType, areaSource, image));
      const m = performance.now();
      const outcome = ev.addImage(id, gts, dts);
      addMs += performance.now() - m;
      convertMs += m - s;
      for (const o of outcome.detections) if (o.evaluated) evaluated++;
      if (++n % sampleEvery === 0) await sample(evaluated);
    }
    const t2 = performance.now();
    ev.finish();
    const t3 = performance.now();
    const cpu = process.cpuUsage(c0);
    const mainCpuMs = mainThreadCpuMs() - m0;
    return { images: n, evaluated, totalMs: t3 - t0, cpuMs: (cpu.user + cpu.system) / 1000, mainCpuMs, convertMs, addMs, finishMs: t3 - t2 };
  }

  const cold = await evaluate(() => (peak = Math.max(peak, used())));
  peak = Math.max(peak, used());
  const warmMs = [];
  const warmCpuMs = [];
  const warmMainCpuMs = [];
  for (let i = 0; i < repeat; i++) {
    const w = await evaluate(() => {});
    warmMs.push(w.totalMs);
    warmCpuMs.push(w.cpuMs);
    warmMainCpuMs.push(w.mainCpuMs);
  }
  // What the evaluator keeps between images: live memory after a GC at each sample, against the
  // number of detections evaluated so far (the slope is the per-detection state).
  const samples = [];
  await evaluate(async (evaluated) => {
    samples.push({ evaluated, bytes: await settledUsage() });
  });
  const first = samples[0];
  const last = samples[samples.length - 1];
  process.stdout.write(
    JSON.stringify({
      images: cold.images,
      gts: gt.annotations.length,
      detections: results.length,
      evaluated: cold.evaluated,
      readMs,
      parseMs,
      groupMs,
      cold,
      warmMs,
      warmCpuMs,
      warmMainCpuMs,
      peakGrowthBytes: peak - baseline,
      retainedGrowthBytes: last.bytes - first.bytes,
      retainedPerDetection: (last.bytes - first.bytes) / (last.evaluated - first.evaluated),
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    }),
  );
}
