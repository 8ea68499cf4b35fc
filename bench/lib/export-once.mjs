// One step of bench/export.mjs, in its own process so that peak RSS is its own.
//   ingest <coco.json> <imageDir> <db>      ingest the file; prints {datasetId}
//   export <db> <datasetId> <out.json>      the COCO export, as `datavisor export` writes it
//   baseline <db> <datasetId>               the rows the export writes, streamed out of DuckDB into JS and dropped: every column, a chunk
//                                           at a time, numbers as typed arrays (the fastest read there is), text as strings
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { loadSettings } from '../../dist/config.js';
import { openDataVisor } from '../../dist/services/app.js';
import { exportCategoryRows, exportCounts, licenseRows } from '../../dist/services/db/export.js';
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
    // Every column of every row the export writes, in file order (ids as DOUBLE: they fit).
    const images = `SELECT image_id::DOUBLE, width::DOUBLE, height::DOUBLE, license_id::DOUBLE, file_name, coco_url, flickr_url, date_captured, metadata
      FROM samples WHERE dataset_id = $1 ORDER BY ord`;
    const shapes = counts.shapesStored;
    const annotations = `SELECT a.annotation_id::DOUBLE, a.image_id::DOUBLE, a.category_id::DOUBLE, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.area,
        a.is_crowd::DOUBLE, a.num_keypoints::DOUBLE, a.score, a.extra${shapes ? ', sh.segmentation, sh.keypoints' : ''}
      FROM annotations a${shapes ? ' LEFT JOIN (SELECT ord, segmentation, keypoints FROM annotation_shapes WHERE dataset_id = $1) sh ON sh.ord = a.ord' : ''}
      WHERE a.dataset_id = $1 AND a.label_set = 0 ORDER BY a.ord`;
    // [sql, DOUBLE columns, VARCHAR columns]
    for (const [sql, numbers, texts] of [[images, 4, 5], [annotations, 11, shapes ? 3 : 1]]) {
      for await (const chunk of snapshot.chunks(sql, [datasetId])) {
        for (let c = 0; c < numbers; c++) chunk.numbers(c);
        for (let c = numbers; c < numbers + texts; c++) chunk.strings(c);
        rows += chunk.rowCount;
      }
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
