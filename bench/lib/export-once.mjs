// One step of bench/export.mjs, in its own process so that peak RSS is its own.
//   ingest <coco.json> <imageDir> <db>      ingest the file; prints {datasetId}
//   export <db> <datasetId> <out.json>      the COCO export, as `datavisor export` writes it
//   baseline <db> <datasetId>               the export's SELECTs, every row streamed into JS (as whole columns, as the export reads them) and dropped
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor } from '../../dist/services/app.js';
import { annotationsQuery, exportCategoryRows, exportCounts, imagesQuery, licenseRows } from '../../dist/services/db/export.js';
import { createLogger } from '../../dist/services/logger.js';

const [mode, ...args] = process.argv.slice(2);
const dbPath = mode === 'ingest' ? args[2] : args[0];
const open = (roots) =>
  openDataVisor(
    loadSettings({
      DATAVISOR_DB_PATH: dbPath,
      DATAVISOR_CACHE_DIR: path.join(path.dirname(dbPath), 'thumbs'),
      DATAVISOR_PLUGIN_DIR: path.join(path.dirname(dbPath), 'no-plugins'),
      DATAVISOR_DATA_ROOTS: roots,
      DATAVISOR_THUMBNAILS_ON_INGEST: '0',
    }),
    createLogger('error'),
  );

const report = (extra) => {
  const usage = process.resourceUsage();
  process.stdout.write(JSON.stringify({ ...extra, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6, rssMB: usage.maxRSS / 1024 }) + '\n');
};

if (mode === 'ingest') {
  const [file, imageDir] = args;
  fs.mkdirSync(path.join(path.dirname(dbPath), 'no-plugins'), { recursive: true });
  const dv = await open(`${path.dirname(fs.realpathSync(file))},${imageDir}`);
  let last;
  for await (const e of dv.ingestion.ingest({ annotationPath: file, imageDir })) last = e;
  await dv.close();
  if (last?.stage !== 'complete') throw new Error(`ingest failed: ${JSON.stringify(last)}`);
  report({ datasetId: last.dataset_id });
} else if (mode === 'export') {
  const [, datasetId, out] = args;
  const dv = await open(path.dirname(dbPath));
  const t0 = performance.now();
  const prepared = await dv.exports.prepare({ datasetId });
  await pipeline(Readable.from(prepared.chunks()), fs.createWriteStream(out));
  const seconds = (performance.now() - t0) / 1000;
  await dv.close();
  report({ seconds, bytes: fs.statSync(out).size, images: prepared.counts.images, annotations: prepared.counts.annotations });
} else if (mode === 'baseline') {
  const [, datasetId] = args;
  const dv = await open(path.dirname(dbPath));
  const t0 = performance.now();
  // What the export reads, from one snapshot, in the same order: counts, licenses, categories, images, annotations.
  await dv.datasets.get(datasetId);
  const selection = { datasetId, filter: {}, labelSet: 0 };
  const snapshot = await dv.db.snapshot();
  let rows = 0;
  try {
    const counts = await exportCounts(snapshot, selection);
    await licenseRows(snapshot, datasetId);
    await exportCategoryRows(snapshot, datasetId);
    // The rows as the export reads them: whole columns, a chunk at a time.
    for (const q of [imagesQuery(selection), annotationsQuery(selection, counts.shapesStored)]) {
      for await (const table of snapshot.columns(q.sql, q.params)) rows += table.count;
    }
  } finally {
    snapshot.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  await dv.close();
  report({ seconds, rows });
} else {
  throw new Error(`unknown mode ${mode}`);
}
