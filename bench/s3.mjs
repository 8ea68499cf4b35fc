#!/usr/bin/env node
// npm run bench:s3 [-- --runs 3 --images 118287 --thumbs 1000]
//
// The same ingests from a local S3 server (s3rver, its own process on 127.0.0.1) and from local
// disk, interleaved in one run, each in a fresh process and database; prints medians:
//   1. the train2017-scale COCO file (thumbnails off): annotation file and image folder both in
//      the bucket vs both on disk; target: bucket ≤ 1.3× local;
//   2. thumbnails of 1,000 generated JPEGs made during an ingest (the JSON on disk in both
//      cases): images/s from the bucket vs from disk.
// Files are generated once into $DATAVISOR_BENCH_DIR (default <tmp>/datavisor-bench) as
// bench/ingest.mjs does, never into the repo; the bucket lives in a temp folder removed at the end.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const ROOT = path.resolve(import.meta.dirname, '..');
const GEN = path.resolve(ROOT, '../shared/bench/gen-coco.mjs');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    images: { type: 'string', default: '118287' },
    thumbs: { type: 'string', default: '1000' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
  },
});
const runs = Number(opts.runs);
// The SDK's notice that its 2027 releases need Node 22 would only clutter the output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const thumbCount = Number(opts.thumbs);
fs.mkdirSync(opts.dir, { recursive: true });
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(', ');
const loadBefore = load();

// ---- data: the big JSON, and a small dataset with real JPEGs
const bigFile = path.join(opts.dir, `coco-${opts.images}.json`);
if (!fs.existsSync(bigFile)) {
  console.error(`generating ${bigFile} …`);
  execFileSync(process.execPath, [GEN, '--images', opts.images, '--out', bigFile], { stdio: 'inherit' });
}
const thumbDir = path.join(opts.dir, `thumbs-${thumbCount}`);
const thumbJson = path.join(thumbDir, 'instances.json');
const thumbImages = path.join(thumbDir, 'images');
if (!fs.existsSync(thumbJson) || !fs.existsSync(thumbImages) || fs.readdirSync(thumbImages).length < thumbCount) {
  console.error(`generating ${thumbCount} JPEGs into ${thumbImages} …`);
  fs.mkdirSync(thumbImages, { recursive: true });
  execFileSync(process.execPath, [GEN, '--images', String(thumbCount), '--out', thumbJson, '--images-dir', thumbImages, '--image-count', String(thumbCount)], { stdio: 'inherit', cwd: ROOT });
}

// ---- the S3 server, seeded through the SDK
const bucketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-bench-s3-'));
const server = spawn(process.execPath, ['--openssl-legacy-provider', path.join(ROOT, 'tests/helpers/s3rver-main.mjs'), bucketDir, 'bench'], { stdio: ['pipe', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).once('line', (l) => resolve(JSON.parse(l).port));
  server.once('exit', (c) => reject(new Error(`s3rver exited (${c})`)));
});
const endpoint = `http://127.0.0.1:${port}`;
const awsEnv = { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED' });
const put = (key, file) => client.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: fs.createReadStream(file), ContentLength: fs.statSync(file).size }));

try {
  const t0 = performance.now();
  await put('big/instances.json', bigFile);
  const names = fs.readdirSync(thumbImages);
  for (let i = 0; i < names.length; i += 16) {
    await Promise.all(names.slice(i, i + 16).map((n) => put(`thumbs/images/${n}`, path.join(thumbImages, n))));
  }
  console.error(`seeded s3://bench in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const once = (job) => {
    const dir = fs.mkdtempSync(path.join(opts.dir, 'db-'));
    fs.mkdirSync(path.join(dir, 'no-plugins'));
    try {
      const out = execFileSync(process.execPath, [path.join(ROOT, 'bench/lib/storage-once.mjs'), JSON.stringify({ ...job, dir })], {
        encoding: 'utf8', maxBuffer: 1 << 20, env: { ...process.env, ...awsEnv },
      });
      return JSON.parse(out.trim().split('\n').at(-1));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  const roots = `${path.dirname(fs.realpathSync(bigFile))},${opts.dir},s3://bench`;
  const jobs = {
    localIngest: { annotationPath: bigFile, imageDir: thumbImages, roots, thumbnails: 0 },
    s3Ingest: { annotationPath: 's3://bench/big/instances.json', imageDir: 's3://bench/thumbs/images', roots, thumbnails: 0 },
    localThumbs: { annotationPath: thumbJson, imageDir: thumbImages, roots, thumbnails: thumbCount },
    s3Thumbs: { annotationPath: thumbJson, imageDir: 's3://bench/thumbs/images', roots, thumbnails: thumbCount },
  };
  const results = Object.fromEntries(Object.keys(jobs).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    // Interleaved, so that a change in the machine's load hits both sides alike.
    for (const k of ['localIngest', 's3Ingest']) results[k].push(once(jobs[k]));
    console.error(`ingest run ${i + 1}/${runs}: local ${results.localIngest.at(-1).seconds.toFixed(2)} s, s3 ${results.s3Ingest.at(-1).seconds.toFixed(2)} s`);
  }
  for (let i = 0; i < runs; i++) {
    for (const k of ['localThumbs', 's3Thumbs']) {
      const r = once(jobs[k]);
      if (r.thumbnails !== thumbCount) throw new Error(`${k}: made ${r.thumbnails} thumbnails, expected ${thumbCount}`);
      results[k].push(r);
    }
    console.error(`thumbnail run ${i + 1}/${runs}: local ${(thumbCount / results.localThumbs.at(-1).thumbnailSeconds).toFixed(0)}/s, s3 ${(thumbCount / results.s3Thumbs.at(-1).thumbnailSeconds).toFixed(0)}/s`);
  }

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const sizeMB = fs.statSync(bigFile).size / 1e6;
  const li = median(results.localIngest.map((r) => r.seconds));
  const si = median(results.s3Ingest.map((r) => r.seconds));
  const lt = thumbCount / median(results.localThumbs.map((r) => r.thumbnailSeconds));
  const st = thumbCount / median(results.s3Thumbs.map((r) => r.thumbnailSeconds));
  const first = results.localIngest[0];
  console.log(`\nfile: ${path.basename(bigFile)} (${sizeMB.toFixed(1)} MB, ${first.images.toLocaleString('en')} images, ${first.annotations.toLocaleString('en')} annotations); ${thumbCount} JPEGs for thumbnails; ${runs} runs, medians; ${os.cpus().length} cores, node ${process.version}`);
  console.log(`load average (1, 5, 15 min): ${loadBefore} at start, ${load()} at end\n`);
  console.log('| pass | local disk | S3 (s3rver on 127.0.0.1) | S3 / local |');
  console.log('| --- | ---: | ---: | ---: |');
  // Each S3 run follows its local run: their ratio is less exposed to the machine's load drifting.
  const paired = median(results.s3Ingest.map((r, i) => r.seconds / results.localIngest[i].seconds));
  console.log(`| ingest, thumbnails off: wall (s) | ${li.toFixed(2)} | ${si.toFixed(2)} | ${(si / li).toFixed(2)}× (paired runs: ${paired.toFixed(2)}×) |`);
  console.log(`| ingest: MB/s of the annotation file | ${(sizeMB / li).toFixed(0)} | ${(sizeMB / si).toFixed(0)} | |`);
  console.log(`| ingest: peak RSS (MB) | ${median(results.localIngest.map((r) => r.rssMB)).toFixed(0)} | ${median(results.s3Ingest.map((r) => r.rssMB)).toFixed(0)} | |`);
  console.log(`| thumbnails of ${thumbCount} JPEGs during ingest: images/s | ${lt.toFixed(0)} | ${st.toFixed(0)} | ${(st / lt).toFixed(2)}× |`);
  console.log(`\ntarget: S3 ingest ≤ 1.3× local (${si / li <= 1.3 ? 'met' : 'MISSED'})`);
  console.log(`per-run seconds, local / S3: ${results.localIngest.map((r, i) => `${r.seconds.toFixed(2)} / ${results.s3Ingest[i].seconds.toFixed(2)}`).join(', ')}`);
} finally {
  client.destroy();
  server.stdin.end();
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(bucketDir, { recursive: true, force: true });
}
