#!/usr/bin/env node
// bench/cold-layers.mjs — where the cold-thumbnail route's time goes beyond sharp's (issue 4).
//
//   node bench/cold-layers.mjs [--layers floor,service,app,route] [--rounds 6] [--scratch DIR]
//
// Each layer is a server in its own child process, asked for never-made medium thumbnails of
// 640×480 JPEGs by autocannon with 4 connections, as `bench:http`'s 4-connection cold row:
//   floor    node:http running the service's sharp pipeline per request: HTTP and the client alone
//   service  node:http in front of a ThumbnailService (lookups, in-flight sharing, memory cache,
//            decode caps, write-behind), the source path handed over directly
//   app      node:http in the DataVisor process calling dv.samples.thumbnail (dataset and file-name
//            lookups, the path check), with DuckDB and the rest of the app loaded
//   route    the real server: router, middleware, one log line per request
// Rounds go layer by layer, each burst of 300 followed by the bare sharp loop (4 in flight, in this
// process) after a 1.5 s pause for the write-behind; one warm-up round is not counted. Prints each
// layer's median thumbnails/s and its ratio to the median of the bare loops. Differences of 2–3%
// between layers are within one run's noise on a shared 2-core machine: repeat before trusting one.
// Needs `npm run build` and the fixture of bench/http.mjs (run it once).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bareLoop, coldBurst, defaultScratch, files640, median, renderMedium } from './lib/cold.mjs';

const HERE = fileURLToPath(import.meta.url);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const N = 300;

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]?.startsWith('--') ? '1' : all[i + 1] ?? '1']] : acc), []),
);

if (args.layer) await serveLayer(args.layer, JSON.parse(args.config));
else await main();

/** A child: one layer's server on loopback. Prints {"url"} once listening. */
async function serveLayer(layer, { images, work }) {
  const { default: sharp } = await import('sharp');
  // As the server runs sharp (src/services/thumbnail-render.ts): the layers differ only above it.
  sharp.cache(false);
  const listen = (handler) => {
    const server = http.createServer((req, res) =>
      handler(req).then(
        (body) => {
          res.writeHead(200, { 'content-type': 'image/webp', 'content-length': body.length });
          res.end(body);
        },
        (err) => {
          res.writeHead(500);
          res.end(String(err));
        },
      ),
    );
    server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`));
  };
  // Paths are /<dataset>/<image id>; the layers without a database map ids onto the files.
  const files = JSON.parse(fs.readFileSync(path.join(work, 'coco.json'), 'utf8')).images;
  const parse = (url) => {
    const [, dataset, image] = url.split('/');
    return { dataset, image: Number(image), file: path.join(images, files[(Number(image) - 1) % files.length].file_name) };
  };
  if (layer === 'floor') return listen(async (req) => renderMedium(sharp, parse(req.url).file));
  if (layer === 'service') {
    const { ThumbnailService } = await import('../dist/services/images/thumbnails.js');
    const service = new ThumbnailService({ cacheDir: path.join(work, 'service-cache') });
    return listen(async (req) => {
      const { dataset, image, file } = parse(req.url);
      return (await service.get({ datasetId: dataset, sampleKey: String(image), size: 'medium', loadSource: async () => file })).body;
    });
  }
  const { loadSettings } = await import('../dist/config.js');
  const { openDataVisor } = await import('../dist/services/app.js');
  const { createLogger } = await import('../dist/services/logger.js');
  const { startServer } = await import('../dist/server.js');
  const dv = await openDataVisor(
    loadSettings({
      DATAVISOR_HOST: '127.0.0.1',
      DATAVISOR_PORT: '0',
      DATAVISOR_DB_PATH: path.join(work, `${layer}.duckdb`),
      DATAVISOR_CACHE_DIR: path.join(work, `${layer}-cache`),
      DATAVISOR_PLUGIN_DIR: path.join(work, 'no-plugins'),
      DATAVISOR_DATA_ROOTS: `${work},${images}`,
      DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    }),
    // As bench:http's server: a JSON line per request, here to /dev/null.
    createLogger('info', (await import('pino')).pino.destination({ dest: '/dev/null', sync: false })),
  );
  const server = await startServer(dv);
  if (layer === 'route') return process.stdout.write(`${JSON.stringify({ url: server.url, ingest: server.url, route: true })}\n`);
  // app: datasets are ingested through the real server; thumbnails come from the service call alone.
  const raw = http.createServer(async (req, res) => {
    const [, dataset, image] = req.url.split('/');
    try {
      const thumb = await dv.samples.thumbnail(dataset, image, 'medium');
      res.writeHead(200, { 'content-type': thumb.contentType, 'content-length': thumb.body.length, etag: thumb.etag });
      res.end(thumb.body);
    } catch (err) {
      res.writeHead(500);
      res.end(String(err));
    }
  });
  raw.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${raw.address().port}`, ingest: server.url })}\n`));
}

async function main() {
  const { default: autocannon } = await import('autocannon');
  const { default: sharp } = await import('sharp');
  sharp.cache(false);
  const scratch = path.resolve(args.scratch ?? defaultScratch(REPO));
  const images = path.join(scratch, 'images');
  if (!fs.existsSync(images)) throw new Error(`no fixture in ${scratch}: run \`npm run bench:http\` once (or pass --scratch)`);
  const layers = String(args.layers ?? 'floor,service,app,route').split(',');
  const rounds = Number(args.rounds ?? 6);
  const files = await files640(sharp, images);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-cold-layers-'));
  fs.mkdirSync(path.join(work, 'no-plugins'));
  const coco = {
    images: Array.from({ length: N }, (_, i) => ({ id: i + 1, file_name: files[i % files.length], width: 640, height: 480 })),
    annotations: [],
    categories: [{ id: 1, name: 'thing' }],
  };
  fs.writeFileSync(path.join(work, 'coco.json'), JSON.stringify(coco));
  const paths = coco.images.map((img) => path.join(images, img.file_name));
  const children = [];
  try {
    const servers = [];
    for (const layer of layers) {
      const child = spawn(process.execPath, [HERE, '--layer', layer, '--config', JSON.stringify({ images, work })], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      const info = await new Promise((resolve, reject) => {
        child.on('exit', (code) => reject(new Error(`layer ${layer} exited with ${code}`)));
        createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line)));
      });
      servers.push({ layer, ...info, rates: [] });
    }
    const bare = [];
    let fresh = 0;
    for (let round = -1; round < rounds; round++) {
      for (const s of servers) {
        // Every burst is cold: a new dataset where there is a database, a new cache key otherwise.
        const dataset = s.ingest ? await ingest(s.ingest, path.join(work, 'coco.json'), images) : `ds${++fresh}`;
        const pathOf = (image) => (s.route ? `/images/${dataset}/${image}?size=medium` : `/${dataset}/${image}`);
        const seconds = await coldBurst(autocannon, { url: s.url, connections: 4, n: N, pathOf });
        await new Promise((r) => setTimeout(r, 1500));
        const bareSeconds = await bareLoop(sharp, paths);
        if (round >= 0) {
          s.rates.push(N / seconds);
          bare.push(N / bareSeconds);
        }
      }
    }
    const b = median(bare);
    process.stdout.write(`bare sharp loop: ${b.toFixed(1)}/s (median of ${bare.length})\n\n| layer | thumbnails/s | vs bare |\n| --- | ---: | ---: |\n`);
    for (const s of servers) process.stdout.write(`| ${s.layer} | ${median(s.rates).toFixed(1)} | ${(b / median(s.rates)).toFixed(3)}× |\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function ingest(base, annotationPath, imageDir) {
  const res = await fetch(`${base}/datasets/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ annotation_path: annotationPath, image_dir: imageDir }) });
  const events = (await res.text()).split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)));
  const done = events.at(-1);
  if (done?.stage !== 'complete') throw new Error(`ingest failed: ${JSON.stringify(done)}`);
  return done.dataset_id;
}
