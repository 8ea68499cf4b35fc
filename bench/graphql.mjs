#!/usr/bin/env node
// bench/graphql.mjs — `npm run bench:graphql`: GraphQL paging on a train2017-scale dataset.
//
// Ingests the synthetic train2017 file once into a bench database (reused while the table
// definitions are unchanged), starts the real server (src/server.ts) on loopback, and loads it
// with autocannon (in a child process, so the load generator does not share the server's event
// loop): `samples(first: 50)` with annotations and thumbnailUrl, at the first page and after a
// cursor 100,000 samples deep. Prints p50/p99/req/s and the SQL statements per request.
//
//   BENCH_COCO      the annotation file   (default /work/scratch/train2017.json; generated when missing)
//   BENCH_DIR       database and scratch  (default /work/scratch/graphql-bench)
//   BENCH_SECONDS   seconds per run       (default 10)
//   BENCH_CONNECTIONS                     (default 2)
//   DATAVISOR_DB_MEMORY_LIMIT and the other settings apply as they do to `datavisor serve`.
import { execFileSync, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

// As bin/datavisor.js does for `datavisor serve`; graphql-js loads later, through dist/.
process.env.NODE_ENV ??= 'production';

// The load generator is this file again, in a child process (`--load`), so that it does not share
// the server's event loop; it gets its options and returns autocannon's result over IPC.
if (process.argv[2] === '--load') {
  process.once('message', (options) => {
    autocannon(options, (err, result) => process.send({ error: err ? String(err) : undefined, result }, () => process.exit(0)));
  });
  await new Promise(() => {}); // until the message above ends this process
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COCO = path.resolve(process.env.BENCH_COCO ?? '/work/scratch/train2017.json');
const DIR = path.resolve(process.env.BENCH_DIR ?? '/work/scratch/graphql-bench');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 2);
const DEEP = 100_000;
const TARGET_P50_MS = 10;
const TARGET_RATIO = 1.5;

const { loadSettings } = await import(path.join(ROOT, 'dist/config.js'));
const { openDataVisor } = await import(path.join(ROOT, 'dist/services/app.js'));
const { createLogger } = await import(path.join(ROOT, 'dist/services/logger.js'));
const { startServer } = await import(path.join(ROOT, 'dist/server.js'));
const { SCHEMA_STATEMENTS } = await import(path.join(ROOT, 'dist/services/db/schema.js'));
const { encodeSampleCursor, filterHash } = await import(path.join(ROOT, 'dist/schema/paging.js'));

if (!fs.existsSync(COCO)) {
  console.log(`${COCO} is missing: generating it (118,287 images, about 450 MB) …`);
  fs.mkdirSync(path.dirname(COCO), { recursive: true });
  execFileSync(process.execPath, [path.join(ROOT, '..', 'shared', 'bench', 'gen-coco.mjs'), '--images', '118287', '--out', COCO], { stdio: 'inherit' });
}
const imageDir = path.join(DIR, 'images'); // empty: the bench reads rows, not pixels
for (const d of [DIR, imageDir, path.join(DIR, 'plugins')]) fs.mkdirSync(d, { recursive: true });
// The database is reused while the table definitions it was made with are the current ones.
const layout = createHash('sha256').update(JSON.stringify(SCHEMA_STATEMENTS)).digest('hex').slice(0, 16);
const dbPath = path.join(DIR, `bench-${layout}.duckdb`);
for (const f of fs.readdirSync(DIR)) {
  if (/^bench(-[0-9a-f]{16})?\.duckdb(\.wal)?$/.test(f) && !f.startsWith(path.basename(dbPath))) fs.rmSync(path.join(DIR, f));
}
const settings = loadSettings({
  ...process.env, // DATAVISOR_DB_MEMORY_LIMIT and friends apply; the lines below do not move
  DATAVISOR_HOST: '127.0.0.1',
  DATAVISOR_PORT: '0',
  DATAVISOR_DB_PATH: dbPath,
  DATAVISOR_CACHE_DIR: path.join(DIR, 'thumbnails'),
  DATAVISOR_PLUGIN_DIR: path.join(DIR, 'plugins'),
  DATAVISOR_DATA_ROOTS: `${path.dirname(COCO)},${DIR}`,
  DATAVISOR_THUMBNAILS_ON_INGEST: '0',
});
const dv = await openDataVisor(settings, createLogger(process.env.DATAVISOR_LOG_LEVEL ?? 'warn'));

const source = fs.realpathSync(COCO);
let dataset = (await dv.datasets.list()).find((d) => d.sourcePath === source && d.bytes === fs.statSync(source).size);
if (dataset) {
  console.log(`reusing dataset ${dataset.id} (${dataset.imageCount} images, ${dataset.annotationCount} annotations) in ${settings.dbPath}`);
} else {
  console.log(`ingesting ${COCO} into ${settings.dbPath} …`);
  for await (const e of dv.ingestion.ingest({ annotationPath: COCO, imageDir, datasetName: 'train2017-bench' })) {
    if (e.stage === 'error') throw new Error(`ingest failed: ${e.code} ${e.message}`);
    if (e.stage === 'complete') {
      console.log(e.message);
      dataset = await dv.datasets.get(e.dataset_id);
    }
  }
}
if (dataset.imageCount <= DEEP + 50) throw new Error(`the dataset has ${dataset.imageCount} samples; the deep page needs more than ${DEEP + 50}`);

// Statements in flight: when the load generator stops, the server is still answering its last
// requests, and closing DuckDB under a running statement leaves the process unable to exit.
let inFlight = 0;
const query = dv.db.query.bind(dv.db);
dv.db.query = async (...args) => {
  inFlight++;
  try {
    return await query(...args);
  } finally {
    inFlight--;
  }
};
async function drained() {
  for (let idle = 0; idle < 5; idle = inFlight === 0 ? idle + 1 : 0) await new Promise((resolve) => setTimeout(resolve, 20));
}

// The real HTTP server (REST + GraphQL), as `datavisor serve` runs it.
const server = await startServer(dv);
const url = `${server.url}/graphql`;

const QUERY = `query Page($id: ID!, $after: String) {
  samples(datasetId: $id, first: 50, after: $after) {
    edges { node { id fileName thumbnailUrl annotations { categoryName bbox { x y w h } } } }
  }
}`;
// The cursor of the 100,000th sample (ord 99,999), made as the server makes it: the page after it
// starts at sample 100,000 without reading the 100,000 before it.
const deepCursor = encodeSampleCursor({ datasetId: dataset.id, filterHash: filterHash({}) }, DEEP - 1);
const body = (after) => JSON.stringify({ query: QUERY, variables: { id: dataset.id, after } });
const headers = { 'content-type': 'application/json', accept: 'application/json' };

/** One request alone: its answer is checked and its SQL statements counted exactly. */
async function check(after) {
  const before = dv.db.queryCount;
  const res = await fetch(url, { method: 'POST', headers, body: body(after) });
  const json = await res.json();
  const queries = dv.db.queryCount - before;
  if (res.status !== 200 || json.errors) throw new Error(`bench query failed: ${res.status} ${JSON.stringify(json.errors)}`);
  const edges = json.data.samples.edges;
  if (edges.length !== 50) throw new Error(`expected a page of 50, got ${edges.length}`);
  const at = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query: 'query($id: ID!, $after: String) { samples(datasetId: $id, first: 1, after: $after) { edges { node { position } } } }', variables: { id: dataset.id, after } }) });
  const position = (await at.json()).data.samples.edges[0].node.position;
  if (position !== (after ? DEEP : 0)) throw new Error(`the page starts at sample ${position}`);
  const annotations = edges.reduce((n, e) => n + e.node.annotations.length, 0);
  return { edges: edges.length, annotations, bytes: JSON.stringify(json).length, queries };
}

async function run(name, after) {
  const shape = await check(after);
  const r = await load(after, SECONDS);
  if (r.non2xx || r.errors) throw new Error(`${name}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
  return { name, ...shape, p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average, requests: r.requests.total };
}

async function load(after, duration) {
  const child = fork(fileURLToPath(import.meta.url), ['--load'], { stdio: 'inherit' });
  child.send({ url, method: 'POST', headers, body: body(after), connections: CONNECTIONS, duration });
  const { error, result } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code}`)));
  });
  if (error) throw new Error(error);
  return result;
}

try {
  // Warm both pages up (JIT, DuckDB's buffers) before measuring either.
  for (const after of [null, deepCursor]) await load(after, Math.min(2, SECONDS));
  const first = await run('first page', null);
  const deep = await run(`after ${DEEP.toLocaleString('en')} samples`, deepCursor);
  const ratio = deep.p50 / first.p50;
  console.log(`\nsamples(first: 50) { id fileName thumbnailUrl annotations { categoryName bbox } } — ${dataset.imageCount.toLocaleString('en')} samples, ${dataset.annotationCount.toLocaleString('en')} annotations; autocannon ${CONNECTIONS} connections × ${SECONDS} s on loopback\n`);
  console.log('| page | p50 ms | p99 ms | req/s | SQL queries / request | annotations / page | response bytes |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of [first, deep]) {
    console.log(`| ${r.name} | ${r.p50} | ${r.p99} | ${Math.round(r.rps)} | ${r.queries} | ${r.annotations} | ${r.bytes.toLocaleString('en')} |`);
  }
  console.log(`\ndeep / first (p50): ${ratio.toFixed(2)}×`);
  // Where a request's time goes: the service calls a page makes, alone and one at a time.
  const p50 = async (fn) => {
    const times = [];
    for (let i = 0; i < 33; i++) {
      const start = performance.now();
      await fn();
      if (i >= 3) times.push(performance.now() - start);
    }
    return times.sort((a, b) => a - b)[times.length >> 1].toFixed(1);
  };
  console.log('\n| service call (in process, sequential) | first page p50 ms | deep page p50 ms |');
  console.log('| --- | ---: | ---: |');
  const pages = {};
  for (const [key, afterOrd] of [['first', null], ['deep', DEEP - 1]]) pages[key] = (await dv.samples.page(dataset.id, {}, { kind: 'after', afterOrd, limit: 50 })).samples.map((x) => x.ord);
  const row = async (name, fn) => console.log(`| ${name} | ${await p50(() => fn(null, pages.first))} | ${await p50(() => fn(DEEP - 1, pages.deep))} |`);
  await row('datasets.getMany (the dataset loader)', () => dv.datasets.getMany([dataset.id]));
  await row('samples.page (50 + 1 rows)', (afterOrd) => dv.samples.page(dataset.id, {}, { kind: 'after', afterOrd, limit: 50 }));
  await row('samples.annotationsOf (the annotations loader)', (_afterOrd, ords) => dv.samples.annotationsOf(dataset.id, ords));
  const ok = first.p50 < TARGET_P50_MS && deep.p50 < TARGET_P50_MS && ratio <= TARGET_RATIO;
  console.log(`targets: p50 < ${TARGET_P50_MS} ms and deep within ${TARGET_RATIO}× of first: ${ok ? 'met' : 'NOT met'}`);
  process.exitCode = ok ? 0 : 1;
} finally {
  await server.close();
  await drained();
  await dv.close();
}

