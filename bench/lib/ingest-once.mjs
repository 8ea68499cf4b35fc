// One ingest of a file into a fresh database, in its own process so that peak RSS is its own.
// argv: annotationPath imageDir dbPath pluginDir
import fs from 'node:fs';
import path from 'node:path';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor } from '../../dist/services/app.js';
import { createLogger } from '../../dist/services/logger.js';

const [annotationPath, imageDir, dbPath, pluginDir] = process.argv.slice(2);
const pick = (env, names) => Object.fromEntries(names.filter((n) => env[n]).map((n) => [n, env[n]]));
const settings = loadSettings({
  DATAVISOR_DB_PATH: dbPath,
  DATAVISOR_CACHE_DIR: path.join(path.dirname(dbPath), 'thumbs'),
  DATAVISOR_PLUGIN_DIR: pluginDir,
  // The bench reads only what it generated; its files may be symlinks into a scratch folder.
  DATAVISOR_DATA_ROOTS: `${path.dirname(fs.realpathSync(annotationPath))},${imageDir}`,
  DATAVISOR_THUMBNAILS_ON_INGEST: '0',
  // Knobs a comparison may pin from the environment.
  ...pick(process.env, ['DATAVISOR_PARSE_THREADS', 'DATAVISOR_DB_MEMORY_LIMIT', 'DATAVISOR_STORE_SHAPES']),
});
const dv = await openDataVisor(settings, createLogger('error'));
// DATAVISOR_BENCH_BUSY_MAIN=F (bench/ingest.mjs --busy-main F): the main thread is kept busy a
// fraction F of the time, as a slow writer or a loaded machine keeps it, so the consumer of the
// parse threads falls behind them; what they read ahead must stay bounded all the same.
const busy = Number(process.env.DATAVISOR_BENCH_BUSY_MAIN ?? 0);
if (busy > 0) {
  setInterval(() => {
    const until = performance.now() + 10 * busy;
    while (performance.now() < until);
  }, 10).unref();
}
const t0 = performance.now();
let last;
for await (const e of dv.ingestion.ingest({ annotationPath, imageDir })) last = e;
const seconds = (performance.now() - t0) / 1000;
await dv.close();
if (last?.stage !== 'complete') {
  process.stderr.write(`ingest failed: ${JSON.stringify(last)}\n`);
  process.exit(1);
}
// CPU seconds (every thread of the process): on a shared machine a steadier measure of the work than wall time.
const usage = process.resourceUsage();
process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6, rssMB: usage.maxRSS / 1024, images: last.image_count, annotations: last.annotation_count, bytes: last.bytes_read }) + '\n');
