#!/usr/bin/env node
// npm run build && node bench/voc.mjs [-- --runs 3 --files 20000 --dir /tmp/datavisor-bench]
//
// The Pascal VOC reader against a bare pass over the same files. A VOC2012-like folder of
// --files annotation files (1-4 objects each, VOC's 20 classes, ImageSets/Main lists) is generated
// once into the scratch folder (never into the repo); its JPEGImages/ are hard links to 4 real JPEGs.
// Then, interleaved, each in a fresh process (so peak RSS is its own):
//   - bare: list Annotations/ (one readdir), read every XML (16 at a time through fs's callbacks, as
//     the reader did before it read in a thread) and parse it with saxes, the reader's parser, with
//     handlers that do nothing;
//   - bare-sync: the same with the reader's read thread's calls (synchronous), in one thread;
//   - ingest: DataVisor's ingest of the folder into a fresh database, thumbnails off.
// Prints medians (wall, files/s, peak RSS) and the ratio to the bare pass (target ≤ 1.5×).
//
// The same file runs the child passes: `node bench/voc.mjs --child bare|bare-sync|ingest <folder> [db]`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const WINDOW = 16;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '3' },
    files: { type: 'string', default: '20000' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
    child: { type: 'string' },
  },
});

async function main() {
  const runs = Number(opts.runs);
  const files = Number(opts.files);
  const folder = await generate(path.join(opts.dir, `voc-${files}`), files);
  const child = (args) => {
    const out = execFileSync(process.execPath, [import.meta.filename, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(out.trim().split('\n').at(-1));
  };
  const bareRuns = [];
  const syncRuns = [];
  const ingestRuns = [];
  const loads = [];
  for (let i = 0; i < runs; i++) {
    // Interleaved, so that each median is taken over the same stretch of a noisy machine.
    loads.push(os.loadavg()[0]);
    bareRuns.push(child(['--child', 'bare', folder]));
    syncRuns.push(child(['--child', 'bare-sync', folder]));
    const dbDir = fs.mkdtempSync(path.join(opts.dir, 'db-'));
    try {
      ingestRuns.push(child(['--child', 'ingest', folder, path.join(dbDir, 'bench.duckdb')]));
    } finally {
      fs.rmSync(dbDir, { recursive: true, force: true });
    }
    const [b, y, g] = [bareRuns.at(-1), syncRuns.at(-1), ingestRuns.at(-1)];
    console.error(`run ${i + 1}/${runs}: bare ${b.seconds.toFixed(2)} s (cpu ${b.cpu.toFixed(2)} s, ${b.rssMB.toFixed(0)} MB), ` +
      `bare-sync ${y.seconds.toFixed(2)} s (cpu ${y.cpu.toFixed(2)} s), ` +
      `ingest ${g.seconds.toFixed(2)} s (cpu ${g.cpu.toFixed(2)} s, ${g.rssMB.toFixed(0)} MB)`);
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const row = (name, rs) => ({ name, seconds: median(rs.map((r) => r.seconds)), cpu: median(rs.map((r) => r.cpu)), rss: median(rs.map((r) => r.rssMB)) });
  const rows = [
    row('bare pass: list, read (16 at a time), saxes parse', bareRuns),
    row('datavisor ingest, format voc, thumbnails off', ingestRuns),
    row('bare pass, synchronous reads (the read thread\'s calls), one thread', syncRuns),
  ];
  const ing = ingestRuns[0];
  const mb = bareRuns[0].bytes / 1e6;
  console.log(`\nfolder: ${files.toLocaleString('en')} XML files (${mb.toFixed(1)} MB), ${ing.images.toLocaleString('en')} images, ${ing.annotations.toLocaleString('en')} annotations; ` +
    `${runs} runs, medians; ${os.cpus().length} cores, node ${process.version}`);
  loads.push(os.loadavg()[0]);
  console.log(`load average (1 min) at each run's start and the end: ${loads.map((l) => l.toFixed(1)).join(', ')}\n`);
  console.log('| pass | wall | files/s | CPU (user+sys) | peak RSS | wall vs bare | CPU vs bare |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.seconds.toFixed(2)} s | ${Math.round(files / r.seconds).toLocaleString('en')} | ${r.cpu.toFixed(2)} s | ${r.rss.toFixed(0)} MB | ` +
      `${(r.seconds / rows[0].seconds).toFixed(2)}× | ${(r.cpu / rows[0].cpu).toFixed(2)}× |`);
  }
  const m = (k) => median(ingestRuns.map((r) => r[k]));
  console.log(`\ningest, medians: files read by ${m('readSeconds').toFixed(2)} s (CPU ${m('readCpu').toFixed(2)} s), then ` +
    `${(m('seconds') - m('readSeconds')).toFixed(2)} s of the writer's SQL, checks and commit; RSS ${m('rssOpenMB').toFixed(0)} MB once DataVisor is open, before the ingest`);
  const ratio = rows[1].seconds / rows[0].seconds;
  console.log(`\ntarget ≤ 1.5× the bare pass: ${ratio <= 1.5 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}×)`);
  console.log(`against the synchronous bare pass: wall ${(rows[1].seconds / rows[2].seconds).toFixed(2)}×, CPU ${(rows[1].cpu / rows[2].cpu).toFixed(2)}×`);
}

/**
 * A small local file, whole: open, fstat, read, close through fs's callbacks, 16 at a time. Until
 * 2026-12-06 this was the reader's own function (voc-format.ts); the reader now reads in a thread
 * with synchronous calls (bareSync below), and this pass is kept as it was measured.
 */
function readLocalFile(file, maxBytes) {
  return new Promise((resolve, reject) => {
    fs.open(file, 'r', (err, fd) => {
      if (err) return reject(err);
      const done = (e, result) => fs.close(fd, (closeErr) => {
        if (e || closeErr) reject(e ?? closeErr);
        else resolve(result);
      });
      fs.fstat(fd, (statErr, st) => {
        if (statErr) return done(statErr);
        if (st.size > maxBytes) return done(null, `larger than ${maxBytes} bytes`);
        const buf = Buffer.allocUnsafe(st.size);
        const readAt = (at) => {
          if (at >= st.size) return done(null, buf);
          fs.read(fd, buf, at, st.size - at, at, (readErr, n) => {
            if (readErr) done(readErr);
            else if (n === 0) done(null, buf.subarray(0, at));
            else readAt(at + n);
          });
        };
        readAt(0);
      });
    });
  });
}

/**
 * The bare pass with the read thread's own calls (synchronous open, fstat, read, close), in one
 * thread, parsing each file with saxes as it goes: cheaper than the pass above, which waits on
 * libuv's pool for every call, so the harder baseline.
 */
async function bareSync(folder) {
  const { SaxesParser } = await import('saxes');
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const dir = path.join(folder, 'Annotations');
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.xml')).sort();
  const parser = new SaxesParser({ xmlns: false, position: true });
  let elements = 0;
  parser.on('opentag', () => elements++);
  parser.on('text', () => {});
  parser.on('closetag', () => {});
  const decoder = new TextDecoder('utf-8');
  let bytes = 0;
  for (const name of names) {
    const fd = fs.openSync(path.join(dir, name), 'r');
    let buf;
    try {
      const size = fs.fstatSync(fd).size;
      buf = Buffer.allocUnsafe(size);
      let at = 0;
      while (at < size) {
        const n = fs.readSync(fd, buf, at, size - at, at);
        if (n === 0) break;
        at += n;
      }
      buf = buf.subarray(0, at);
    } finally {
      fs.closeSync(fd);
    }
    bytes += buf.byteLength;
    parser.write(decoder.decode(buf)).close();
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, cpu: cpuSince(c0), rssMB: process.resourceUsage().maxRSS / 1024, files: names.length, elements, bytes }) + '\n');
}

/** The bare pass: what any VOC reader must do at least. */
async function bare(folder) {
  const { SaxesParser } = await import('saxes');
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const dir = path.join(folder, 'Annotations');
  const names = (await fs.promises.readdir(dir)).filter((n) => n.endsWith('.xml')).sort();
  const parser = new SaxesParser({ xmlns: false, position: true });
  let elements = 0;
  parser.on('opentag', () => elements++);
  parser.on('text', () => {});
  parser.on('closetag', () => {});
  const decoder = new TextDecoder('utf-8');
  let bytes = 0;
  let next = 0;
  const running = [];
  const start = () => running.push(readLocalFile(path.join(dir, names[next++]), 8 * 1024 * 1024));
  while (next < names.length && running.length < WINDOW) start();
  while (running.length > 0) {
    const buf = await running.shift();
    if (next < names.length) start();
    bytes += buf.byteLength;
    parser.write(decoder.decode(buf)).close();
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, cpu: cpuSince(c0), rssMB: process.resourceUsage().maxRSS / 1024, files: names.length, elements, bytes }) + '\n');
}

async function ingest(folder, dbPath) {
  const { loadSettings } = await import(path.join(ROOT, 'dist/config.js'));
  const { openDataVisor } = await import(path.join(ROOT, 'dist/services/app.js'));
  const { createLogger } = await import(path.join(ROOT, 'dist/services/logger.js'));
  const emptyPlugins = path.join(path.dirname(dbPath), 'no-plugins');
  fs.mkdirSync(emptyPlugins, { recursive: true });
  const settings = loadSettings({
    DATAVISOR_DB_PATH: dbPath,
    DATAVISOR_CACHE_DIR: path.join(path.dirname(dbPath), 'thumbs'),
    DATAVISOR_PLUGIN_DIR: emptyPlugins,
    DATAVISOR_DATA_ROOTS: folder,
    DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    DATAVISOR_DEMO: '0',
  });
  const dv = await openDataVisor(settings, createLogger('error'));
  const rssOpenMB = process.memoryUsage().rss / 1024 / 1024;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let last;
  let readSeconds = null;
  let readCpu = null;
  for await (const e of dv.ingestion.ingest({ annotationPath: folder, format: 'voc' })) {
    last = e;
    // The event after the last file is read: what follows is the writer's SQL, checks and commit.
    if (readSeconds === null && /checking references/.test(e.message)) {
      readSeconds = (performance.now() - t0) / 1000;
      readCpu = cpuSince(c0);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await dv.close();
  if (last?.stage !== 'complete') {
    process.stderr.write(`ingest failed: ${JSON.stringify(last)}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({
    seconds, cpu: cpuSince(c0), readSeconds, readCpu, rssOpenMB, rssMB: process.resourceUsage().maxRSS / 1024, images: last.image_count, annotations: last.annotation_count,
    warnings: last.warnings.map((w) => `${w.code}:${w.count}`),
  }) + '\n');
}

/** CPU seconds (user + system, every thread of the process) since `c0`. */
function cpuSince(c0) {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

const CLASSES = ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
  'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'];
const POSES = ['Unspecified', 'Left', 'Right', 'Frontal', 'Rear'];

/** A VOC2012-like folder, made once (a `.done` marker says it is complete). Deterministic. */
async function generate(folder, files) {
  if (fs.existsSync(path.join(folder, '.done'))) return folder;
  console.error(`generating ${folder} (${files} files) …`);
  fs.rmSync(folder, { recursive: true, force: true });
  for (const d of ['Annotations', 'JPEGImages', 'ImageSets/Main']) fs.mkdirSync(path.join(folder, d), { recursive: true });
  const sharp = (await import('sharp')).default;
  const sources = [];
  for (let k = 0; k < 4; k++) {
    const file = path.join(folder, `source-${k}.jpg`);
    // Real JPEGs of VOC's usual size, with some texture so they are not trivially small.
    const noise = Buffer.alloc(500 * 375 * 3);
    let s = 12345 + k;
    for (let i = 0; i < noise.length; i++) noise[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    await sharp(noise, { raw: { width: 500, height: 375, channels: 3 } }).jpeg({ quality: 80 }).toFile(file);
    sources.push(file);
  }
  let seed = 42;
  // The high bits: an LCG's low bits repeat with a short period.
  const rand = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) % n;
  const ids = [];
  for (let i = 0; i < files; i++) {
    const id = `2012_${String(i).padStart(6, '0')}`;
    ids.push(id);
    const objects = [];
    for (let k = 0, n = 1 + rand(4); k < n; k++) {
      const xmin = 1 + rand(400);
      const ymin = 1 + rand(300);
      objects.push(`	<object>
		<name>${CLASSES[rand(CLASSES.length)]}</name>
		<pose>${POSES[rand(POSES.length)]}</pose>
		<truncated>${rand(2)}</truncated>
		<occluded>${rand(2)}</occluded>
		<bndbox>
			<xmin>${xmin}</xmin>
			<ymin>${ymin}</ymin>
			<xmax>${xmin + 1 + rand(99)}</xmax>
			<ymax>${ymin + 1 + rand(74)}</ymax>
		</bndbox>
		<difficult>${rand(10) === 0 ? 1 : 0}</difficult>
	</object>
`);
    }
    fs.writeFileSync(path.join(folder, 'Annotations', `${id}.xml`), `<annotation>
	<folder>VOC2012</folder>
	<filename>${id}.jpg</filename>
	<source>
		<database>The VOC2012 Database</database>
		<annotation>PASCAL VOC2012</annotation>
		<image>flickr</image>
	</source>
	<size>
		<width>500</width>
		<height>375</height>
		<depth>3</depth>
	</size>
	<segmented>0</segmented>
${objects.join('')}</annotation>
`);
    fs.linkSync(sources[i % sources.length], path.join(folder, 'JPEGImages', `${id}.jpg`));
  }
  const split = (from, to) => ids.slice(Math.floor(files * from), Math.floor(files * to));
  fs.writeFileSync(path.join(folder, 'ImageSets/Main/train.txt'), split(0, 0.5).join('\n') + '\n');
  fs.writeFileSync(path.join(folder, 'ImageSets/Main/val.txt'), split(0.5, 0.8).join('\n') + '\n');
  fs.writeFileSync(path.join(folder, 'ImageSets/Main/trainval.txt'), split(0, 0.8).join('\n') + '\n');
  fs.writeFileSync(path.join(folder, 'ImageSets/Main/test.txt'), split(0.8, 1).join('\n') + '\n');
  for (const f of sources) fs.rmSync(f);
  fs.writeFileSync(path.join(folder, '.done'), '');
  return folder;
}

// Last, so that every constant above is initialized.
if (opts.child === 'bare') await bare(positionals[0]);
else if (opts.child === 'bare-sync') await bareSync(positionals[0]);
else if (opts.child === 'ingest') await ingest(positionals[0], positionals[1]);
else await main();
