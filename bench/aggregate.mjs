#!/usr/bin/env node
// bench/aggregate.mjs — `npm run bench:aggregate`: each aggregation of issue 18 (docs/curation.md)
// on a train2017-scale dataset (118,287 images, 860,001 annotations) and on 1M images / 7.3M
// annotations, with and without a category filter (person), against a baseline in the same run.
//
//   node bench/aggregate.mjs [--runs 9] [--scratch DIR] [--only 118k|1m] [--one-thread]
//
// --one-thread: aggregations on one DuckDB thread, as other reads (they run with DuckDB's workers:
// docs/storage.md, "Threads"), to compare the two on the same checkout.
//
// 1. Generates (once; reused) the COCO files with ../shared/bench/gen-coco.mjs and ingests each
//    (once; reused) into a DuckDB file of its own in the scratch folder, outside the repository.
// 2. Opens each database as the server does and times every aggregation through AggregationService
//    with its cache off (the SQL, every run), `--runs` times after one warm-up; the baseline is a bare
//    `SELECT count(*)` of the dataset's annotations through the same connection pool, timed the same
//    way, interleaved with the rows. The category summaries (docs/curation.md) are built by the
//    warm-up and read by the timed runs; one row times their build (the first filtered categories
//    after a change: the summaries dropped before each run), one the first after a tag (which
//    changes no annotation: nothing is built). One more row: an answer the service cache holds.
// Prints a markdown table of medians (ms) and their ratio to the baseline, the median CPU time of
// each row (the process's, DuckDB's threads included: what other processes' load does not add to),
// and the peak RSS.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]?.startsWith('--') ? '1' : all[i + 1] ?? '1']] : acc), []),
);
const RUNS = Number(args.runs ?? 9);
const SCRATCH = path.resolve(args.scratch ?? path.join(os.tmpdir(), 'datavisor-aggregate-bench'));
const SCALES = [
  { name: '118k', images: 118287 },
  { name: '1m', images: 1000000 },
].filter((s) => !args.only || s.name === args.only);
const log = (m) => process.stderr.write(`bench:aggregate: ${m}\n`);

const { loadSettings } = await import('../dist/config.js');
const { openDataVisor } = await import('../dist/services/app.js');
const { createLogger } = await import('../dist/services/logger.js');
const { AggregationService } = await import('../dist/services/aggregate/aggregations.js');

/** The COCO file and its ingested database, made once each. */
function prepare(scale) {
  const dir = path.join(SCRATCH, scale.name);
  fs.mkdirSync(dir, { recursive: true });
  const db = path.join(dir, 'db.duckdb');
  const marker = path.join(dir, '.ingested');
  if (fs.existsSync(marker)) return { db, dir };
  const json = path.join(dir, `coco-${scale.images}.json`);
  if (!fs.existsSync(json)) {
    log(`generating ${json} (once)…`);
    const r = spawnSync(process.execPath, [path.resolve(REPO, '..', 'shared', 'bench', 'gen-coco.mjs'), '--images', String(scale.images), '--out', `${json}.tmp`], { cwd: REPO, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('gen-coco failed');
    fs.renameSync(`${json}.tmp`, json);
  }
  fs.rmSync(db, { force: true });
  fs.rmSync(`${db}.wal`, { force: true });
  const plugins = path.join(dir, 'no-plugins');
  fs.mkdirSync(plugins, { recursive: true });
  log(`ingesting ${json} (once)…`);
  // No image folder is needed: every sample is then marked missing, which no aggregation reads.
  const r = spawnSync(process.execPath, [path.join(REPO, 'bench', 'lib', 'ingest-once.mjs'), json, dir, db, plugins], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('ingest failed');
  log(`ingested: ${r.stdout.toString().trim()}`);
  fs.writeFileSync(marker, r.stdout);
  return { db, dir };
}

/** The process's CPU time since `c0` (process.cpuUsage()), in ms. */
const cpuMs = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The aggregations timed, each a call on the service with its target. */
const CASES = [
  ['counts', (a, t) => a.counts(t)],
  ['categories (annotations)', (a, t) => a.categories(t)],
  ['categories + samples per category', (a, t) => a.categories(t, { sampleCounts: true })],
  ['splits', (a, t) => a.splits(t)],
  ['label sets', (a, t) => a.labelSets(t)],
  ['co-occurrence, top 20 pairs', (a, t) => a.cooccurrence(t, 20)],
  ...['bbox_area', 'aspect_ratio', 'relative_size', 'annotations_per_sample', 'width', 'height', 'pixels'].map((field) => [`histogram ${field}, 20 bins`, (a, t) => a.histogram(t, { field, bins: 20 })]),
  ['histogram bbox_area, log, auto bins', (a, t) => a.histogram(t, { field: 'bbox_area', scale: 'log' })],
  ['histogram bbox_area, 20 bins in [0, 10000]', (a, t) => a.histogram(t, { field: 'bbox_area', bins: 20, min: 0, max: 10000 })],
  ['metadata values of a path', (a, t) => a.metadata(t, 'camera.model')],
];

/** Whether this checkout keeps category summaries (an older one, measured as a baseline, does not). */
async function hasSummaries(db) {
  return (await db.query(`SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'summary_builds'`))[0].n > 0;
}

async function dropSummaries(db, datasetId) {
  const tx = await db.begin();
  for (const table of ['summary_builds', 'sample_categories', 'category_pairs', 'field_stats']) await tx.run(`DELETE FROM ${table} WHERE dataset_id = $1`, [datasetId]);
  await tx.commit();
}

async function measureScale(scale) {
  const { db: dbPath, dir } = prepare(scale);
  const settings = loadSettings({ DATAVISOR_DB_PATH: dbPath, DATAVISOR_CACHE_DIR: path.join(dir, 'thumbs'), DATAVISOR_PLUGIN_DIR: path.join(dir, 'no-plugins'), DATAVISOR_DEMO: '0' });
  const dv = await openDataVisor(settings, createLogger('error'));
  if (args['one-thread'] && dv.db.ingestResources.analyse) dv.db.ingestResources.analyse = (read) => read();
  try {
    const [dataset] = await dv.datasets.list();
    log(`${scale.name}: ${dataset.imageCount} images, ${dataset.annotationCount} annotations`);
    const uncached = new AggregationService(dv.db, dv.datasets, dv.samples, dv.predictions, { cacheBytes: 0 });
    const baselineSql = 'SELECT count(*) AS n FROM annotations WHERE dataset_id = $1';
    const baseline = () => dv.db.query(baselineSql, [dataset.id]);
    const rows = [];
    const baselineTimes = [];
    const baselineCpu = [];
    for (const [filterName, filter] of [['none', {}], ['category=person', { categories: ['person'] }]]) {
      const target = await uncached.target(dataset.id, filter);
      for (const [name, run] of CASES) {
        await run(uncached, target);
        await baseline();
        const times = [];
        const cpu = [];
        for (let i = 0; i < RUNS; i++) {
          let t0 = performance.now();
          let c0 = process.cpuUsage();
          await baseline();
          baselineTimes.push(performance.now() - t0);
          baselineCpu.push(cpuMs(c0));
          t0 = performance.now();
          c0 = process.cpuUsage();
          await run(uncached, target);
          times.push(performance.now() - t0);
          cpu.push(cpuMs(c0));
        }
        rows.push({ filter: filterName, name, p50: median(times), cpu: median(cpu) });
        log(`${scale.name} ${filterName} ${name}: p50 ${median(times).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms`);
      }
    }
    /** `run` timed RUNS times, each after `before` (untimed): a row of its wall and CPU medians. */
    const timed = async (name, before, run) => {
      const times = [];
      const cpu = [];
      for (let i = 0; i < RUNS; i++) {
        const arg = await before();
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await run(arg);
        times.push(performance.now() - t0);
        cpu.push(cpuMs(c0));
      }
      rows.push({ filter: 'category=person', name, p50: median(times), cpu: median(cpu) });
      log(`${scale.name} ${name}: p50 ${median(times).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms`);
    };
    const person = () => uncached.target(dataset.id, { categories: ['person'] });
    const categories = (target) => uncached.categories(target, { sampleCounts: true });
    // The first aggregation after a change builds the category summaries: dropped before each run.
    if (await hasSummaries(dv.db)) {
      const target = await person();
      await timed('categories + samples per category, first after a change (builds the summaries)', () => dropSummaries(dv.db, dataset.id).then(() => target), categories);
    }
    // A tag changes the dataset's revision but no annotation: the summaries stay (docs/curation.md,
    // "Summaries"), so the first aggregation after it builds nothing. Tagged and untagged again
    // before each run, so the database is left as it was.
    const [first] = await dv.db.query('SELECT image_id FROM samples WHERE dataset_id = $1 ORDER BY ord LIMIT 1', [dataset.id]);
    const sampleIds = [Number(first.image_id)];
    await timed('categories + samples per category, first after a tag', async () => {
      await dv.tags.tagSamples(dataset.id, { sampleIds }, ['bench-aggregate']);
      await dv.tags.untagSamples(dataset.id, { sampleIds }, ['bench-aggregate']);
      return person();
    }, categories);
    // The service as the server runs it: the second ask of the same part is answered from memory.
    const served = await dv.aggregations.target(dataset.id, { categories: ['person'] });
    const cachedPart = () => dv.aggregations.histogram(served, { field: 'bbox_area', bins: 20 });
    await cachedPart();
    await timed('histogram bbox_area, 20 bins, from the service cache', () => undefined, cachedPart);
    return { scale, dataset, rows, baseline: median(baselineTimes), baselineCpu: median(baselineCpu) };
  } finally {
    await dv.close();
  }
}

const results = [];
for (const scale of SCALES) results.push(await measureScale(scale));
const rssMB = process.resourceUsage().maxRSS / 1024;

const out = [];
out.push(`${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end; Node ${process.version}; ${RUNS} runs per row after a warm-up; peak RSS ${rssMB.toFixed(0)} MB`);
out.push('');
const head = results.flatMap((r) => [`${r.scale.name} p50 ms (× baseline)`, `${r.scale.name} CPU ms`]);
out.push(`| aggregation | filter | ${head.join(' | ')} |${results.length > 1 ? ' 1m / 118k (CPU) |' : ''}`);
out.push(`| --- | --- | ${head.map(() => '---:').join(' | ')} |${results.length > 1 ? ' ---: |' : ''}`);
out.push(`| baseline: \`SELECT count(*)\` of the annotations | none | ${results.map((r) => `${r.baseline.toFixed(1)} | ${r.baselineCpu.toFixed(1)}`).join(' | ')} |${results.length > 1 ? ` ${(results[1].baselineCpu / results[0].baselineCpu).toFixed(1)} |` : ''}`);
for (let i = 0; i < results[0].rows.length; i++) {
  const row = results[0].rows[i];
  const cells = results.map((r) => `${r.rows[i].p50.toFixed(1)} (${(r.rows[i].p50 / r.baseline).toFixed(1)}) | ${r.rows[i].cpu.toFixed(1)}`);
  const growth = results.length > 1 ? ` ${(results[1].rows[i].cpu / Math.max(results[0].rows[i].cpu, 0.05)).toFixed(1)} |` : '';
  out.push(`| ${row.name} | ${row.filter} | ${cells.join(' | ')} |${growth}`);
}
process.stdout.write(`${out.join('\n')}\n`);
