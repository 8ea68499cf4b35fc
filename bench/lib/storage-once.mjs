// One ingest into a fresh database, in its own process (so peak RSS is its own), reading from
// local disk or a bucket: argv is one JSON object
//   {annotationPath, imageDir, dir, roots, thumbnails}
// Bucket access comes from the standard variables in process.env (AWS_ENDPOINT_URL_S3 …).
// Prints {seconds, thumbnailSeconds, thumbnails, rssMB, images, annotations, bytes}.
import path from 'node:path';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor } from '../../dist/services/app.js';
import { createLogger } from '../../dist/services/logger.js';

const job = JSON.parse(process.argv[2]);
const settings = loadSettings({
  ...process.env,
  DATAVISOR_DB_PATH: path.join(job.dir, 'bench.duckdb'),
  DATAVISOR_CACHE_DIR: path.join(job.dir, 'thumbs'),
  DATAVISOR_PLUGIN_DIR: path.join(job.dir, 'no-plugins'),
  DATAVISOR_DATA_ROOTS: job.roots,
  DATAVISOR_THUMBNAILS_ON_INGEST: String(job.thumbnails ?? 0),
});
const dv = await openDataVisor(settings, createLogger('error'));
const t0 = performance.now();
let last;
let thumbStart = null;
let thumbEnd = null;
for await (const e of dv.ingestion.ingest({ annotationPath: job.annotationPath, imageDir: job.imageDir })) {
  last = e;
  if (e.stage === 'thumbnails') {
    thumbStart ??= performance.now();
    thumbEnd = performance.now();
  }
}
const seconds = (performance.now() - t0) / 1000;
const made = dv.thumbnails.stats.generated;
await dv.close();
if (last?.stage !== 'complete') {
  process.stderr.write(`ingest failed: ${JSON.stringify(last)}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({
  seconds,
  thumbnailSeconds: thumbStart === null ? 0 : (thumbEnd - thumbStart) / 1000,
  thumbnails: made,
  rssMB: process.resourceUsage().maxRSS / 1024,
  images: last.image_count,
  annotations: last.annotation_count,
  bytes: last.bytes_read,
})}\n`);
