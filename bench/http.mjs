#!/usr/bin/env node
// bench/http.mjs — `npm run bench:http`: the HTTP targets of issue 4, measured in one run.
//
//   node bench/http.mjs [--duration 10] [--connections 2,16] [--scratch DIR] [--only load|cold] [--cold-rounds 6]
//
// 1. Generates (once; reused) a train2017-scale COCO file (118,287 images, 860,001 annotations) and
//    300 of its JPEGs with ../shared/bench/gen-coco.mjs, in a scratch folder outside the repository.
// 2. Starts the real server (`--serve` mode of this file) in a child process on loopback, with its
//    own temp database and cache, logging at info level (one JSON line per request) to /dev/null,
//    and ingests the file through POST /datasets/ingest (DATAVISOR_THUMBNAILS_ON_INGEST=0).
// 3. Loads it with autocannon from this process for --duration seconds per row at 2 and 16
//    connections: GET /samples (first page, the same with a browser's Accept-Encoding, offset
//    100,000, category=person, and a new page each request, which the page cache cannot answer), a cached medium
//    thumbnail through the full route, and a bare node:http server (`--bare` mode, a child process
//    too) answering the same bytes from memory.
// 4. Cold thumbnails: never-made medium thumbnails of 640×480 JPEGs through the route of a fresh
//    server, requested by autocannon with 6 connections (as a browser does; the server's cap keeps
//    4 decodes running) and with 4, alternating with a bare sharp loop over the same files with 4
//    in flight in this process: a warm-up round, then --cold-rounds rounds of 300 per client
//    (default 6); the medians of the per-round rates are compared.
// Prints a markdown table. Latencies are measured per response (autocannon's own histogram has
// 1 ms resolution), from the 'response' events.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bareLoop, coldBurst, defaultScratch, files640, median } from './lib/cold.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const HERE = fileURLToPath(import.meta.url);

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]?.startsWith('--') ? '1' : all[i + 1] ?? '1']] : acc), []),
);

if (args.serve) await serveMode();
else if (args.bare) await bareMode(args.bare);
else await main();

// ---------------------------------------------------------------------------------------------
// Child modes

/** The DataVisor server as `npm start` runs it, minus the demo. Prints {"url"} when listening. */
async function serveMode() {
  const { loadSettings } = await import('../dist/config.js');
  const { openDataVisor } = await import('../dist/services/app.js');
  const { createLogger } = await import('../dist/services/logger.js');
  const { startServer } = await import('../dist/server.js');
  const dv = await openDataVisor(loadSettings(), createLogger('info'));
  const server = await startServer(dv);
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  // As `datavisor serve` shuts down (src/cli/serve.ts), minus its deadline.
  process.on('SIGTERM', async () => {
    const closed = server.close();
    dv.stopWork();
    await closed;
    await dv.close();
    process.exit(0);
  });
}

/** The floor: node:http answering one thumbnail's bytes from memory with the route's headers. */
async function bareMode(file) {
  const body = fs.readFileSync(file);
  const headers = { 'content-type': 'image/webp', etag: '"0123456789abcdef"', 'cache-control': 'public, max-age=31536000, immutable', 'content-length': body.length };
  const server = http.createServer((req, res) => {
    res.writeHead(200, headers);
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------------------------------------
// The run

async function main() {
  const { default: autocannon } = await import('autocannon');
  const { default: sharp } = await import('sharp');
  // As the server runs sharp (src/services/thumbnail-render.ts), so the bare loop is the same pipeline.
  sharp.cache(false);
  const duration = Number(args.duration ?? 10);
  const connections = String(args.connections ?? '2,16').split(',').map(Number);
  const scratch = path.resolve(args.scratch ?? defaultScratch(REPO));
  const fixture = prepareFixture(scratch);
  const work = fs.mkdtempSync(path.join(scratch, 'run-'));
  const children = [];
  const stopAll = () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  process.on('exit', stopAll);
  const log = (m) => process.stderr.write(`bench:http: ${m}\n`);
  try {
    log(`${os.cpus().length} cores, Node ${process.version}; fixture in ${scratch}`);
    const only = args.only;
    let load = null;
    if (only !== 'cold') load = await loadRows({ autocannon, fixture, work, scratch, children, duration, connections, log });
    let cold = null;
    if (only !== 'load') {
      log('cold thumbnails: route vs bare sharp loop…');
      cold = await coldThumbnails({ autocannon, sharp, fixture, scratch, children, env: serverEnv(path.join(work, 'cold'), scratch, {}) });
      log(`cold: route, 6 connections ${cold.route[6].map((r) => r.toFixed(1)).join(', ')}/s; 4 connections ${cold.route[4].map((r) => r.toFixed(1)).join(', ')}/s; bare ${cold.bare.map((r) => r.toFixed(1)).join(', ')}/s`);
    }
    process.stdout.write(`${renderTable({ load, cold, connections, duration })}\n`);
  } finally {
    stopAll();
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : null)));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The train2017-scale dataset under autocannon: /samples rows and the cached thumbnail vs bare node:http. */
async function loadRows({ autocannon, fixture, work, scratch, children, duration, connections, log }) {
  const server = await startChild(['--serve'], serverEnv(path.join(work, 'main'), scratch));
  children.push(server.child);
  const base = server.url;

  log('ingesting the train2017-scale file through POST /datasets/ingest…');
  const t0 = performance.now();
  const done = await ingest(base, { annotation_path: fixture.json, image_dir: fixture.images, dataset_name: 'train2017-bench' });
  const ingestSeconds = (performance.now() - t0) / 1000;
  const id = done.dataset_id;
  log(`ingested ${done.image_count} images, ${done.annotation_count} annotations in ${ingestSeconds.toFixed(1)} s`);

  const rows = [];
  const load = async (name, url, c, requests) => {
    const r = await measure(autocannon, url, c, duration, requests);
    rows.push({ name, connections: c, ...r });
    log(`${name} @${c}: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${Math.round(r.rps)} req/s${r.errors ? `, ${r.errors} errors/non-2xx` : ''}`);
    return r;
  };

  const first = `${base}/samples?dataset_id=${id}&limit=50`;
  const deep = `${base}/samples?dataset_id=${id}&offset=100000&limit=50`;
  const person = `${base}/samples?dataset_id=${id}&category=person&limit=50`;
  await check(first, 50);
  await check(deep, 50);
  await check(person, 50);

  // A sample whose JPEG exists: the first of the file.
  const sample = (await (await fetch(first)).json()).items[0];
  const thumbUrl = `${base}/images/${id}/${sample.id}?size=medium`;
  const thumb = await fetch(thumbUrl);
  if (thumb.status !== 200) throw new Error(`thumbnail answered ${thumb.status}: ${await thumb.text()}`);
  const bytes = Buffer.from(await thumb.arrayBuffer());
  const bytesFile = path.join(work, 'thumb.webp');
  fs.writeFileSync(bytesFile, bytes);
  const bare = await startChild(['--bare', bytesFile], {});
  children.push(bare.child);

  const results = {};
  for (const c of connections) {
    results[`first@${c}`] = await load('GET /samples?limit=50 (offset 0)', first, c);
    // As a browser asks: the page cache keeps the compressed bytes (src/rest/response-cache.ts).
    results[`firstBr@${c}`] = await load('GET /samples?limit=50 (offset 0), Accept-Encoding: gzip, deflate, br, zstd', first, c, [
      { path: new URL(first).pathname + new URL(first).search, headers: { 'accept-encoding': 'gzip, deflate, br, zstd' } },
    ]);
    results[`deep@${c}`] = await load('GET /samples?offset=100000&limit=50', deep, c);
    results[`person@${c}`] = await load('GET /samples?category=person&limit=50', person, c);
    // The rows above ask for one page again and again, which the server's page cache answers
    // after the first time. Here every request asks for another page (any offset, so ~118K
    // distinct pages and almost no repeats): the cost of a page that is not cached.
    results[`miss@${c}`] = await load('GET /samples?offset=<random>&limit=50 (a new page each request: cache misses)', first, c, [
      { setupRequest: (req) => ({ ...req, path: `/samples?dataset_id=${id}&offset=${Math.floor(Math.random() * (done.image_count - 50))}&limit=50` }) },
    ]);
    results[`thumb@${c}`] = await load(`cached medium thumbnail, full route (${bytes.length} B)`, thumbUrl, c);
    results[`bare@${c}`] = await load('bare node:http, same bytes from memory', `${bare.url}/`, c);
  }

  // Done with the big dataset: stop its servers so the next runs have the machine.
  server.child.kill('SIGTERM');
  bare.child.kill('SIGTERM');
  return { rows, results, ingestSeconds, done, thumbBytes: bytes.length };
}

/** Settings of a benchmark server: its own database and cache under `dir`, logs at info level. */
function serverEnv(dir, scratch, extra = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const env = {
    DATAVISOR_HOST: '127.0.0.1',
    DATAVISOR_PORT: '0',
    DATAVISOR_DB_PATH: path.join(dir, 'bench.duckdb'),
    DATAVISOR_CACHE_DIR: path.join(dir, 'thumbnails'),
    DATAVISOR_PLUGIN_DIR: path.join(dir, 'no-plugins'),
    DATAVISOR_DATA_ROOTS: scratch,
    DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    DATAVISOR_DEMO: '0',
    DATAVISOR_LOG_LEVEL: 'info',
    // libuv's default pool (4), as `npm start` runs, unless a row asks otherwise.
    UV_THREADPOOL_SIZE: undefined,
    ...extra,
  };
  return env;
}

/** train2017.json (118,287 images) and 300 of its JPEGs, generated once and reused. */
function prepareFixture(scratch) {
  const json = path.join(scratch, 'train2017.json');
  const images = path.join(scratch, 'images');
  const marker = path.join(scratch, '.complete');
  if (!fs.existsSync(marker)) {
    fs.mkdirSync(scratch, { recursive: true });
    process.stderr.write(`bench:http: generating ${json} and 300 JPEGs (once)…\n`);
    const gen = path.resolve(REPO, '..', 'shared', 'bench', 'gen-coco.mjs');
    // gen-coco resolves sharp from the working directory's node_modules.
    const r = spawnSync(process.execPath, [gen, '--images', '118287', '--out', json, '--images-dir', images, '--image-count', '300'], { cwd: REPO, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('gen-coco failed');
    fs.writeFileSync(marker, new Date().toISOString());
  }
  return { json, images };
}

function startChild(argv, env) {
  const merged = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined));
  const child = spawn(process.execPath, [HERE, ...argv], { cwd: REPO, env: merged, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`child ${argv[0]} exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ child, url: JSON.parse(line).url }));
  });
}

async function ingest(base, body) {
  const res = await fetch(`${base}/datasets/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const events = (await res.text()).split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)));
  const last = events.at(-1);
  if (last?.stage !== 'complete') throw new Error(`ingest failed: ${JSON.stringify(last)}`);
  return last;
}

async function check(url, items) {
  const r = await fetch(url);
  const body = await r.json();
  if (r.status !== 200 || body.items.length !== items) throw new Error(`${url} answered ${r.status} with ${body.items?.length} items`);
}

/** autocannon for `duration` s; latencies from every response (ms, float), req/s over the run. */
async function measure(autocannon, url, connections, duration, requests) {
  // Warm up: connections, JIT, caches.
  await autocannon({ url, connections, duration: 1, requests });
  const latencies = [];
  let errors = 0;
  const instance = autocannon({ url, connections, duration, requests });
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 400) latencies.push(ms);
    else errors++;
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { p50: q(0.5), p99: q(0.99), rps: latencies.length / duration, errors: errors + result.errors + result.timeouts, autocannonRps: result.requests.average };
}

/**
 * Cold medium thumbnails of 640×480 JPEGs: a dataset whose 300 samples cycle over the fixture's
 * 640×480 files (the cache is keyed by sample, so each is a real render), fetched through the
 * route by autocannon; then the same 300 renders as a bare sharp loop with 4 in flight. Two
 * clients, in the same rounds:
 * - 6 connections, as a browser opens to one host for a grid of <img>: the server's own cap then
 *   keeps 4 decodes running, as the bare loop does (the target row);
 * - 4 connections, 4 requests in flight: each decode slot idles while its request's answer and
 *   the next request travel, so fewer than 4 decodes run part of the time (informational).
 * Rounds alternate with the bare loop, after one warm-up round that is not counted (a server that
 * has been up a while: JIT-compiled code, sharp loaded); each burst is a new dataset, so every
 * request is a miss. Per-round rates are reported as medians.
 */
async function coldThumbnails({ autocannon, sharp, fixture, scratch, children, env }) {
  const server = await startChild(['--serve'], env);
  children.push(server.child);
  const base = server.url;
  const files = await files640(sharp, fixture.images);
  const N = 300;
  const ROUNDS = Number(args['cold-rounds'] ?? 6);
  const coco = {
    images: Array.from({ length: N }, (_, i) => ({ id: i + 1, file_name: files[i % files.length], width: 640, height: 480 })),
    annotations: [],
    categories: [{ id: 1, name: 'thing', supercategory: 'thing' }],
  };
  const coldJson = path.join(scratch, `cold-${process.pid}.json`);
  fs.writeFileSync(coldJson, JSON.stringify(coco));
  const paths = coco.images.map((img) => path.join(fixture.images, img.file_name));
  const route = { 6: [], 4: [] };
  const bare = [];
  try {
    for (let round = -1; round < ROUNDS; round++) {
      for (const connections of [6, 4]) {
        const done = await ingest(base, { annotation_path: coldJson, image_dir: fixture.images, dataset_name: `cold-${round}-${connections}` });
        const pathOf = (image) => `/images/${done.dataset_id}/${image}?size=medium`;
        const routeSeconds = await coldBurst(autocannon, { url: base, connections, n: N, pathOf });
        // The server writes a burst's thumbnails to disk once its decoders go idle (write-behind,
        // docs/thumbnails.md): let that finish, so that it does not run during the bare loop.
        await new Promise((r) => setTimeout(r, 1500));
        const bareSeconds = await bareLoop(sharp, paths);
        if (round >= 0) {
          route[connections].push(N / routeSeconds);
          bare.push(N / bareSeconds);
        }
      }
    }
    return { distinctFiles: files.length, rounds: ROUNDS, perRound: N, barePerSec: median(bare), routePerSec: { 6: median(route[6]), 4: median(route[4]) }, route, bare };
  } finally {
    fs.rmSync(coldJson, { force: true });
    server.child.kill('SIGTERM');
  }
}

function renderTable({ load, cold, connections, duration }) {
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const ok = (b) => (b ? 'yes' : '**no**');
  const lines = [];
  if (load) {
    const { rows, results, ingestSeconds, done, thumbBytes } = load;
    lines.push(`Dataset: ${done.image_count} images, ${done.annotation_count} annotations (ingested over SSE in ${ingestSeconds.toFixed(1)} s). ${duration} s per row, autocannon on loopback, ${os.cpus().length} cores, Node ${process.version}. Cached thumbnail: ${thumbBytes} bytes.`);
    lines.push('');
    lines.push('| request | connections | p50 ms | p99 ms | req/s |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    for (const r of rows) lines.push(`| ${r.name} | ${r.connections} | ${f(r.p50)} | ${f(r.p99)} | ${Math.round(r.rps)} |`);
    lines.push('');
    lines.push('| target | measured | met |');
    lines.push('| --- | --- | --- |');
    for (const c of connections) {
      const a = results[`first@${c}`];
      const b = results[`deep@${c}`];
      const p = results[`person@${c}`];
      const t = results[`thumb@${c}`];
      const bare = results[`bare@${c}`];
      lines.push(`| ${c} conn: first page p50 < 5 ms, p99 < 25 ms | ${f(a.p50)} / ${f(a.p99)} ms | ${ok(a.p50 < 5 && a.p99 < 25)} |`);
      lines.push(`| ${c} conn: offset 100,000 p50 < 5 ms, p99 < 25 ms | ${f(b.p50)} / ${f(b.p99)} ms | ${ok(b.p50 < 5 && b.p99 < 25)} |`);
      lines.push(`| ${c} conn: deep page p50 ≤ 2× first page | ${f(b.p50 / a.p50)}× | ${ok(b.p50 <= 2 * a.p50)} |`);
      lines.push(`| ${c} conn: category=person p50 < 15 ms | ${f(p.p50)} ms | ${ok(p.p50 < 15)} |`);
      const m = results[`miss@${c}`];
      lines.push(`| (not a target) ${c} conn: a new page each request, p50 / p99 | ${f(m.p50)} / ${f(m.p99)} ms, ${Math.round(m.rps)} req/s | |`);
      lines.push(`| ${c} conn: cached thumbnail ≥ 1/3 of bare node:http | ${Math.round(t.rps)} / ${Math.round(bare.rps)} req/s = ${f(t.rps / bare.rps)} | ${ok(t.rps >= bare.rps / 3)} |`);
    }
  }
  if (cold) {
    if (!load) lines.push('| target | measured | met |', '| --- | --- | --- |');
    const ratio = (c) => cold.barePerSec / cold.routePerSec[c];
    lines.push(`| cold 640×480 → medium, 6 connections (the server keeps its 4 decodes busy): within 1.15× of bare sharp with 4 in flight (medians of ${cold.rounds} rounds) | route ${f(cold.routePerSec[6], 1)}/s, bare ${f(cold.barePerSec, 1)}/s: ${f(ratio(6))}× | ${ok(ratio(6) <= 1.15)} |`);
    lines.push(`| (not a target) the same with 4 connections, 4 requests in flight | route ${f(cold.routePerSec[4], 1)}/s: ${f(ratio(4))}× | |`);
    lines.push('');
    lines.push(`Cold: ${cold.rounds} rounds of ${cold.perRound} thumbnails per client after a warm-up round, over ${cold.distinctFiles} distinct 640×480 files (each sample is its own cache entry). Route per round, 6 connections: ${cold.route[6].map((r) => f(r, 1)).join(', ')}/s; 4 connections: ${cold.route[4].map((r) => f(r, 1)).join(', ')}/s; bare: ${cold.bare.map((r) => f(r, 1)).join(', ')}/s.`);
  }
  return lines.join('\n');
}
