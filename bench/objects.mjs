#!/usr/bin/env node
// bench/objects.mjs — `npm run bench:objects`: the object view (docs/curation.md, "Objects").
//
// 1. Pages of objects on a train2017-scale dataset (the synthetic file of ../shared/bench/gen-coco.mjs,
//    860,001 annotations), through ObjectService.page in process: the first page against a page
//    100,000 objects deep (cursor made from the row there, found by a separate SQL query), in file
//    order, by area, and for one category; median of BENCH_RUNS runs each, ratio deep/first.
// 2. Crops against thumbnails over HTTP on the demo dataset (real JPEGs): cold (every request a
//    decode) and cached (memory), requests/s with BENCH_CONCURRENCY requests in flight.
// Prints one table and the peak RSS.
//
//   BENCH_COCO   the annotation file  (default /work/scratch/train2017.json; generated when missing)
//   BENCH_DIR    database and scratch (default /work/scratch/objects-bench)
//   BENCH_RUNS   runs per page        (default 21)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COCO = path.resolve(process.env.BENCH_COCO ?? '/work/scratch/train2017.json');
const DIR = path.resolve(process.env.BENCH_DIR ?? '/work/scratch/objects-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 21);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const DEEP = 100_000;

const { loadSettings } = await import(path.join(ROOT, 'dist/config.js'));
const { openDataVisor } = await import(path.join(ROOT, 'dist/services/app.js'));
const { createLogger } = await import(path.join(ROOT, 'dist/services/logger.js'));
const { startServer } = await import(path.join(ROOT, 'dist/server.js'));
const { generateDemoDataset } = await import(path.join(ROOT, 'dist/demo/index.js'));
const { encodeObjectCursor } = await import(path.join(ROOT, 'dist/services/datasets/paging.js'));
const { objectViewHash, toObjectSort } = await import(path.join(ROOT, 'dist/services/objects/object-filter.js'));

if (!fs.existsSync(COCO)) {
  console.log(`${COCO} is missing: generating it (118,287 images, about 450 MB) …`);
  fs.mkdirSync(path.dirname(COCO), { recursive: true });
  execFileSync(process.execPath, [path.join(ROOT, '..', 'shared', 'bench', 'gen-coco.mjs'), '--images', '118287', '--out', COCO], { stdio: 'inherit' });
}
fs.rmSync(DIR, { recursive: true, force: true });
for (const d of [DIR, path.join(DIR, 'images'), path.join(DIR, 'plugins')]) fs.mkdirSync(d, { recursive: true });

const settings = loadSettings({
  DATAVISOR_HOST: '127.0.0.1', DATAVISOR_PORT: '0', DATAVISOR_DB_PATH: path.join(DIR, 'bench.duckdb'), DATAVISOR_CACHE_DIR: path.join(DIR, 'thumbnails'),
  DATAVISOR_PLUGIN_DIR: path.join(DIR, 'plugins'), DATAVISOR_DATA_ROOTS: [path.dirname(COCO), DIR].join(','), DATAVISOR_THUMBNAILS_ON_INGEST: '0', DATAVISOR_DEMO: '0',
}, DIR);
const dv = await openDataVisor(settings, createLogger('silent'));

async function ingest(annotationPath, imageDir) {
  for await (const e of dv.ingestion.ingest({ annotationPath, imageDir })) {
    if (e.stage === 'complete') return e.dataset_id;
    if (e.stage === 'error') throw new Error(`${e.code}: ${e.message}`);
  }
  throw new Error('ingest ended without complete');
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];

// ---- 1. pages ---------------------------------------------------------------------------------
console.log('ingesting the train2017-scale file …');
const big = await ingest(COCO, path.join(DIR, 'images'));
const dataset = await dv.datasets.get(big);
const person = (await dv.datasets.categories(big)).find((c) => c.name === 'person');

/** The row DEEP objects into an order, by a query of its own (not the code under test). */
async function deepCursor(sort, objects, orderSql, where = '') {
  const [row] = await dv.db.query(
    `SELECT ${orderSql.key} AS k, ord FROM annotations WHERE dataset_id = $1 AND label_set = 0 ${where}
     ORDER BY ${orderSql.key} ${orderSql.dir}, ord ${orderSql.dir} LIMIT 1 OFFSET ${DEEP - 1}`, [big]);
  const scope = { datasetId: big, revision: dataset.revision, hash: objectViewHash({}, objects, sort) };
  return encodeObjectCursor(scope, Number(row.k), row.ord);
}

async function timePage(label, objects, sortInput, orderSql, where) {
  const sort = toObjectSort(sortInput);
  const after = await deepCursor(sort, objects, orderSql, where);
  const time = async (args) => {
    const ms = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const page = await dv.objects.page(big, {}, objects, sort, args);
      ms.push(performance.now() - t);
      if (page.edges.length !== 50) throw new Error(`${label}: ${page.edges.length} rows`);
    }
    return median(ms);
  };
  // Alternated, so both see the same machine load.
  const first = await time({ first: 50 });
  const deep = await time({ first: 50, after });
  rows.push([`${label}: page of 50`, first.toFixed(2), deep.toFixed(2), (deep / first).toFixed(2)]);
}

await timePage('file order', {}, null, { key: 'sample_ord', dir: 'ASC' });
await timePage('by area, descending', {}, { field: 'area', direction: 'desc' }, { key: `coalesce(area, '-infinity'::DOUBLE)`, dir: 'DESC' });
await timePage('person, file order', { categories: ['person'] }, null, { key: 'sample_ord', dir: 'ASC' }, `AND category_id = ${person.categoryId}`);

// ---- 2. crops against thumbnails --------------------------------------------------------------
const demoDir = path.join(DIR, 'demo');
await generateDemoDataset(demoDir, { images: 240, seed: 1 });
const demo = await ingest(path.join(demoDir, 'annotations.json'), path.join(demoDir, 'images'));
const server = await startServer(dv);
const objects = (await dv.objects.page(demo, {}, {}, toObjectSort(null), { first: 200 })).edges.map((e) => e.node);
const samples = (await dv.samples.page(demo, {}, { kind: 'offset', offset: 0, limit: 200 })).samples;
const cropUrls = objects.map((o) => `${server.url}/images/${demo}/${o.sampleId}/objects/${o.ord}?size=medium&rev=${o.revision}`);
const thumbUrls = samples.map((s) => `${server.url}/images/${demo}/${s.id}?size=medium`);

/** Requests per second fetching every URL once, CONCURRENCY at a time. */
async function rate(urls) {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < urls.length) {
      const res = await fetch(urls[next++]);
      if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  }));
  return urls.length / ((performance.now() - t) / 1000);
}
const repeat = (urls, n) => Array.from({ length: n }, () => urls).flat();
const thumbCold = await rate(thumbUrls);
const cropCold = await rate(cropUrls);
const thumbCached = await rate(repeat(thumbUrls, 10));
const cropCached = await rate(repeat(cropUrls, 10));
rows.push(['cold, req/s (200 images / objects)', thumbCold.toFixed(0), cropCold.toFixed(0), (cropCold / thumbCold).toFixed(2)]);
rows.push(['cached, req/s (2,000 requests)', thumbCached.toFixed(0), cropCached.toFixed(0), (cropCached / thumbCached).toFixed(2)]);

await server.close();
await dv.close();

console.log(`\nmedians of ${RUNS} runs (pages, ms) and rates with ${CONCURRENCY} requests in flight; ${dataset.annotationCount} annotations`);
console.log('| measure | first page / thumbnail | 100,000 deep / crop | ratio |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
