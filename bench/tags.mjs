#!/usr/bin/env node
// npm run bench:tags [-- --runs 5 --images 118287 --dir DIR]
//
// Tagging by a filter on the train2017-scale dataset (issue 18: tagging 100,000 samples by a filter
// under 1 s), through the service (dv.tags), against baselines measured in the same run on the same
// database: the filter's bare `SELECT count(*)` and a bare `INSERT … SELECT` of the same rows into
// a table of the same shape (DuckDB alone: no check for existing tags, no count, no revision).
// The COCO file is generated once into the scratch folder (default: $DATAVISOR_BENCH_DIR or
// <tmp>/datavisor-bench, shared with bench/ingest.mjs), never into the repo, and ingested into a
// fresh database each run of this script (thumbnails off). The filter is the `min_annotations`
// threshold whose match is nearest 100,000 samples. Operations are interleaved, medians over
// --runs rounds; peak RSS is the process's high-water mark over the timed rounds (reset first).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const GEN = path.resolve(ROOT, '../shared/bench/gen-coco.mjs');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    images: { type: 'string', default: '118287' },
    dir: { type: 'string', default: process.env.DATAVISOR_BENCH_DIR || path.join(os.tmpdir(), 'datavisor-bench') },
  },
});
const RUNS = Number(opts.runs);
const log = (m) => process.stderr.write(`bench:tags: ${m}\n`);

const file = path.join(opts.dir, `coco-${opts.images}.json`);
if (!fs.existsSync(file)) {
  log(`generating ${file} …`);
  fs.mkdirSync(opts.dir, { recursive: true });
  execFileSync(process.execPath, [GEN, '--images', opts.images, '--out', file], { stdio: 'inherit' });
}
const work = path.join(opts.dir, 'tags-bench');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(path.join(work, 'images'), { recursive: true });
fs.mkdirSync(path.join(work, 'plugins'));

const { loadSettings } = await import('../dist/config.js');
const { openDataVisor } = await import('../dist/services/app.js');
const { createLogger } = await import('../dist/services/logger.js');
const settings = loadSettings({
  DATAVISOR_DB_PATH: path.join(work, 'bench.duckdb'),
  DATAVISOR_CACHE_DIR: path.join(work, 'thumbs'),
  DATAVISOR_PLUGIN_DIR: path.join(work, 'plugins'),
  DATAVISOR_DATA_ROOTS: `${path.dirname(fs.realpathSync(file))},${work}`,
  DATAVISOR_THUMBNAILS_ON_INGEST: '0',
});
const dv = await openDataVisor(settings, createLogger('error'));
const ms = async (fn) => {
  const t0 = performance.now();
  const result = await fn();
  return { ms: performance.now() - t0, result };
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const peakRssMB = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;

try {
  log(`ingesting ${path.basename(file)} …`);
  let done;
  const ingest = await ms(async () => {
    for await (const e of dv.ingestion.ingest({ annotationPath: file, imageDir: path.join(work, 'images') })) done = e;
  });
  if (done?.stage !== 'complete') throw new Error(`ingest failed: ${JSON.stringify(done)}`);
  const id = done.dataset_id;
  log(`ingested ${done.image_count} images, ${done.annotation_count} annotations in ${(ingest.ms / 1000).toFixed(1)} s`);

  // The threshold whose match is nearest 100,000 samples.
  const counts = await dv.db.query(`SELECT k, (SELECT count(*) FROM samples WHERE dataset_id = $1 AND annotation_count >= k) AS n FROM range(1, 8) t(k)`, [id]);
  const { k, n } = counts.map((r) => ({ k: Number(r.k), n: Number(r.n) })).sort((a, b) => Math.abs(a.n - 100_000) - Math.abs(b.n - 100_000))[0];
  const filter = { minAnnotations: k };
  log(`filter min_annotations=${k} matches ${n} samples`);

  const COUNT = `SELECT count(*) AS n FROM samples WHERE dataset_id = $1 AND annotation_count >= $2::INTEGER`;
  await dv.db.query('CREATE TABLE IF NOT EXISTS bench_tags AS SELECT * FROM sample_tags LIMIT 0');
  const BARE_INSERT = `INSERT INTO bench_tags SELECT $1, ord, 'bench' FROM samples WHERE dataset_id = $1 AND annotation_count >= $2::INTEGER`;
  const rows = { count: [], insert: [], tag: [], again: [], filterByTag: [], untag: [] };
  const check = (what, got) => {
    if (got !== n) throw new Error(`${what} changed ${got} samples, expected ${n}`);
  };
  // Warm-up round (JIT, DuckDB's caches), not counted.
  check('warm-up tag', (await dv.tags.tagSamples(id, { filter }, ['bench'])).changed);
  check('warm-up untag', (await dv.tags.untagSamples(id, { filter }, ['bench'])).changed);
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const rssBefore = process.memoryUsage().rss / 2 ** 20;
  for (let i = 0; i < RUNS; i++) {
    const c = await ms(() => dv.db.query(COUNT, [id, k]));
    check('count', Number(c.result[0].n));
    rows.count.push(c.ms);
    rows.insert.push((await ms(() => dv.db.transaction((tx) => tx.run(BARE_INSERT, [id, k])))).ms);
    await dv.db.transaction((tx) => tx.run('DELETE FROM bench_tags'));
    const tag = await ms(() => dv.tags.tagSamples(id, { filter }, ['bench']));
    check('tag', tag.result.changed);
    rows.tag.push(tag.ms);
    const again = await ms(() => dv.tags.tagSamples(id, { filter }, ['bench']));
    if (again.result.changed !== 0) throw new Error('tagging again changed samples');
    rows.again.push(again.ms);
    const byTag = await ms(() => dv.samples.count(id, { tags: ['bench'] }));
    check('count by tag', byTag.result);
    rows.filterByTag.push(byTag.ms);
    const untag = await ms(() => dv.tags.untagSamples(id, { filter }, ['bench']));
    check('untag', untag.result.changed);
    rows.untag.push(untag.ms);
    log(`round ${i + 1}/${RUNS}: count ${c.ms.toFixed(0)} ms, bare insert ${rows.insert.at(-1).toFixed(0)} ms, tag ${tag.ms.toFixed(0)} ms, again ${again.ms.toFixed(0)} ms, count by tag ${byTag.ms.toFixed(0)} ms, untag ${untag.ms.toFixed(0)} ms`);
  }
  const peak = peakRssMB();
  const base = median(rows.insert);
  const table = [
    ['bare `SELECT count(*)` of the filter (baseline)', rows.count],
    ['bare `INSERT … SELECT` of the same rows (baseline)', rows.insert],
    ['`tagSamples` by the filter (adds ' + n.toLocaleString('en') + ')', rows.tag],
    ['`tagSamples` again (changes nothing)', rows.again],
    ['count of `tags: [tag]` (' + n.toLocaleString('en') + ' tagged)', rows.filterByTag],
    ['`untagSamples` by the filter', rows.untag],
  ];
  console.log(`\n${done.image_count.toLocaleString('en')} images, ${done.annotation_count.toLocaleString('en')} annotations; filter min_annotations=${k} (${n.toLocaleString('en')} samples); ${RUNS} rounds, medians; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}, node ${process.version}\n`);
  console.log('| operation | median (ms) | vs bare INSERT |');
  console.log('| --- | ---: | ---: |');
  for (const [name, xs] of table) console.log(`| ${name} | ${median(xs).toFixed(0)} | ${(median(xs) / base).toFixed(2)}× |`);
  console.log(`\npeak RSS over the rounds ${peak.toFixed(0)} MB (RSS before them ${rssBefore.toFixed(0)} MB); target: tag by filter ≤ 1000 ms (${median(rows.tag) <= 1000 ? 'met' : 'MISSED'})`);
} finally {
  await dv.close();
  fs.rmSync(work, { recursive: true, force: true });
}
