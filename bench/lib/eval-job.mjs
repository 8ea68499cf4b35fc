// One step of bench/eval.mjs, in a process of its own so that its time and peak RSS are its own.
// argv[2] is one JSON object {job, db, dataDir, ...}; prints one JSON line.
//
//   ingest    {annotationPath, storeShapes}: the ground truth into a fresh database
//   import    {resultsPath, name}: a COCO results file as a prediction run
//   evaluate  {name, iouType, times, split}: dv.evaluations.evaluate `times` times (the first is
//             the process's cold one), each evaluation's rows deleted after it
//
// Memory: the kernel's peak RSS (VmHWM) is reset (/proc/self/clear_refs) right before the timed
// call and read after it, so `peakMB` is the peak during that call alone and `beforeMB` the RSS it
// started from; a worker thread also samples RSS every 10 ms (it runs while the main thread is
// busy), a check on the kernel's figure where clear_refs is not allowed.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor } from '../../dist/services/app.js';
import { createLogger } from '../../dist/services/logger.js';

const job = JSON.parse(process.argv[2]);
const MB = 1024 * 1024;

const settings = loadSettings({
  DATAVISOR_DB_PATH: job.db,
  DATAVISOR_CACHE_DIR: path.join(path.dirname(job.db), 'thumbs'),
  DATAVISOR_PLUGIN_DIR: path.join(job.dataDir, 'no-plugins'),
  DATAVISOR_DATA_ROOTS: fs.realpathSync(job.dataDir),
  DATAVISOR_THUMBNAILS_ON_INGEST: '0',
});
fs.mkdirSync(settings.pluginDir, { recursive: true });
const dv = await openDataVisor(settings, createLogger(process.env.DATAVISOR_LOG_LEVEL || 'error'));

/** CPU seconds of the main thread alone (user + system), from /proc (clock ticks of 10 ms). */
function mainThreadCpu() {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function status(key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Peak RSS of `work()` alone: {result, seconds, beforeMB, peakMB, sampledPeakMB}. */
async function measured(work) {
  const sampler = new Worker(
    `const { parentPort } = require('node:worker_threads');
     let peak = 0, stop = false;
     parentPort.on('message', () => { stop = true; });
     const tick = () => { peak = Math.max(peak, process.memoryUsage.rss()); if (stop) parentPort.postMessage(peak); else setTimeout(tick, 10); };
     tick();`,
    { eval: true },
  );
  await new Promise((resolve) => setTimeout(resolve, 30));
  let reset = true;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    reset = false;
  }
  const beforeMB = process.memoryUsage.rss() / MB;
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = performance.now();
  const result = await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const mainCpuSeconds = mainThreadCpu() - main0;
  const peakMB = reset ? status('VmHWM') : NaN;
  const sampled = await new Promise((resolve) => {
    sampler.once('message', resolve);
    sampler.postMessage('stop');
  });
  await sampler.terminate();
  return { result, seconds, cpuSeconds, mainCpuSeconds, beforeMB, peakMB: reset ? peakMB : sampled / MB, sampledPeakMB: sampled / MB };
}

async function datasetId() {
  const [d] = await dv.datasets.list();
  if (!d) throw new Error(`no dataset in ${job.db}`);
  return d.id;
}

let out;
if (job.job === 'ingest') {
  const m = await measured(async () => {
    let last;
    for await (const e of dv.ingestion.ingest({ annotationPath: job.annotationPath, imageDir: job.dataDir, storeShapes: job.storeShapes })) last = e;
    if (last?.stage !== 'complete') throw new Error(`ingest failed: ${JSON.stringify(last)}`);
    return last;
  });
  out = { seconds: m.seconds, peakMB: m.peakMB, images: m.result.image_count, annotations: m.result.annotation_count };
} else if (job.job === 'import') {
  const id = await datasetId();
  const split = job.split ? (await import('./import-split.mjs')).instrument(dv) : null;
  const m = await measured(async () => {
    let last;
    for await (const e of dv.predictions.import({ datasetId: id, resultsPath: job.resultsPath, name: job.name })) last = e;
    if (last?.stage !== 'complete') throw new Error(`import failed: ${JSON.stringify(last)}`);
    return last;
  });
  out = { seconds: m.seconds, cpuSeconds: m.cpuSeconds, mainCpuSeconds: m.mainCpuSeconds, beforeMB: m.beforeMB, peakMB: m.peakMB, processPeakMB: process.resourceUsage().maxRSS / 1024, predictions: m.result.prediction_count, split: split?.report(m.seconds) };
} else if (job.job === 'evaluate') {
  const id = await datasetId();
  const split = job.split ? (await import('./eval-split.mjs')).instrument(dv) : null;
  const runs = [];
  for (let i = 0; i < (job.times ?? 1); i++) {
    const m = await measured(() => {
      split?.start();
      return dv.evaluations.evaluate({ datasetId: id, predictions: job.name, iouType: job.iouType });
    });
    runs.push({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, mainCpuSeconds: m.mainCpuSeconds, beforeMB: m.beforeMB, peakMB: m.peakMB, sampledPeakMB: m.sampledPeakMB, split: split?.report(m.seconds) });
    const e = m.result;
    out ??= { metrics: e.metrics, totals: e.totals, serviceSeconds: e.seconds };
    // The same database for the next run: this run's rows go (not timed).
    await dv.evaluations.delete(id, e.id);
  }
  const [run] = await dv.predictions.list(id);
  out = { ...out, runs, predictions: run.predictionCount, processPeakMB: process.resourceUsage().maxRSS / 1024 };
} else {
  throw new Error(`unknown job ${job.job}`);
}
await dv.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
