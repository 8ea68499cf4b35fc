import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataRoots, importAll, ingestAll, openTestEnv, tempDir, type TestEnv } from '../helpers/env.js';
import { putFile, startS3Server, type S3TestServer } from '../helpers/s3.js';

/**
 * A results file in a bucket (a real S3-wire-protocol server, s3rver) is read in ranges whose
 * chunks the main thread forwards to the parse threads, where a local file's ranges are read by
 * the threads themselves (parse-results.ts): both give the same run, row for row.
 */

const IMAGES = Array.from({ length: 40 }, (_, i) => 200 + i);
const gt = {
  images: IMAGES.map((id) => ({ id, file_name: `${id}.jpg`, width: 640, height: 480 })),
  annotations: [{ id: 1, image_id: IMAGES[0], category_id: 1, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 }],
  categories: [1, 2, 3].map((id) => ({ id, name: `c${id}` })),
};

/** Grouped by image as detectors write them; every 5th with a polygon (read by tokens, not in place). */
const results = Array.from({ length: 3000 }, (_, i) => ({
  image_id: IMAGES[Math.floor((i * IMAGES.length) / 3000)]!,
  category_id: 1 + (i % 3),
  bbox: [i % 600, (i * 7) % 400, 10 + (i % 50) / 4, 12 + (i % 30) / 8],
  score: ((i * 7919) % 1000) / 1000,
  ...(i % 5 === 2 ? { segmentation: [[i % 600, 1, (i % 600) + 4, 1, i % 600, 6]] } : {}),
}));

let s3: S3TestServer;
let env: TestEnv;
let datasetId: string;
/** The ground truth and the local copy of the results file. */
const dir = tempDir();

beforeAll(async () => {
  s3 = await startS3Server(['preds']);
  // Several threads and small parts, so that a file of ~300 KB is cut into ranges.
  env = await openTestEnv({ ...s3.env, DATAVISOR_DATA_ROOTS: [dataRoots(dir), 's3://preds'].join(','), DATAVISOR_PARSE_THREADS: '3', DATAVISOR_PARSE_MIN_PART_BYTES: '20000' });
  fs.writeFileSync(path.join(dir, 'gt.json'), JSON.stringify(gt));
  datasetId = (await ingestAll(env.dv, { annotationPath: path.join(dir, 'gt.json'), imageDir: dir })).at(-1)!.dataset_id!;
  const file = path.join(dir, 'results.json');
  fs.writeFileSync(file, JSON.stringify(results, null, 1));
  await putFile(s3.client, 'preds', 'run/results.json', file);
});

afterAll(async () => {
  await env?.close();
  await s3?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function importRun(resultsPath: string, name: string) {
  const events = await importAll(env.dv, { datasetId, resultsPath, name });
  expect(events.at(-1), events.at(-1)?.message).toMatchObject({ stage: 'complete', prediction_count: results.length });
  const run = await env.dv.predictions.get(datasetId, name);
  return env.dv.db.query(
    `SELECT ord - $3 AS position, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, score, segmentation_kind::VARCHAR AS kind
     FROM annotations WHERE dataset_id = $1 AND label_set = $2 ORDER BY ord`,
    [datasetId, run.labelSet, run.ordBase],
  );
}

describe('a results file in a bucket', () => {
  it('is read in forwarded ranges into the same run as the local file, each row the file\'s', async () => {
    expect(fs.statSync(path.join(dir, 'results.json')).size).toBeGreaterThan(4 * 20000);
    const fromBucket = await importRun('s3://preds/run/results.json', 'bucket');
    const local = await importRun(path.join(dir, 'results.json'), 'local');
    expect(fromBucket).toEqual(local);
    expect(fromBucket.map((r) => [Number(r.position), Number(r.image_id), Number(r.category_id), [r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h], r.area, r.score, r.kind])).toEqual(
      results.map((d, i) => [i, d.image_id, d.category_id, d.bbox, d.bbox[2]! * d.bbox[3]!, d.score, 'segmentation' in d ? 'polygon' : 'none']),
    );
  });
});
