import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newAnnotationColumns, newImageColumns, pushAnnotation, pushImage } from '../../dist/services/records/columns.js';
import type { AnnotationRecord } from '../../dist/services/records/types.js';
import { DatasetWriter } from '../../dist/services/db/dataset-writer.js';
import { newDatasetId } from '../../dist/services/ids.js';
import { createLogger } from '../../dist/services/logger.js';
import { openTestEnv, traces, type TestEnv } from '../helpers/env.js';

/**
 * The writer's `rowsInOrder` (YOLO's promise): annotations go straight into the final table while
 * the rows keep the promise. Whatever a reader then sends (kept, broken midway, renumbered after),
 * the stored rows must be those of the staging path, which these tests run on the same input as
 * the reference, and each annotation row is checked against its input.
 */

const log = createLogger('silent');

interface Step {
  images?: number[];
  annotations?: AnnotationRecord[];
  renumber?: [number[], number[]];
}

const ann = (id: number, imageId: number, categoryId: number, extra: Record<string, unknown> | null = null): AnnotationRecord => ({
  id, imageId, categoryId, bbox: [id, imageId, 10 + id, 5], area: (10 + id) * 5, isCrowd: false, segmentationKind: 'none',
  polygonCount: 0, pointCount: 0, segmentation: null, numKeypoints: null, keypoints: null, score: null, extra,
});

/** Images 0..2 and their annotations in image order: what YOLO sends. */
const inOrder: Step[] = [
  { images: [0, 1], annotations: [ann(1, 0, 0), ann(2, 0, 1, { yolo: [1, 2] }), ann(3, 1, 1)] },
  { images: [2], annotations: [ann(4, 2, 0), ann(5, 2, 0)] },
];

async function write(env: TestEnv, steps: Step[], rowsInOrder: boolean): Promise<string> {
  const id = newDatasetId();
  const w = await DatasetWriter.begin(env.dv.db, id, null, log, { rowsInOrder });
  w.addCategories([{ id: 0, name: 'a', supercategory: null, extra: null }, { id: 1, name: 'b', supercategory: null, extra: null }]);
  for (const s of steps) {
    if (s.images) {
      const c = newImageColumns();
      for (const i of s.images) {
        pushImage(c, { id: i, fileName: `${i}.jpg`, width: 100, height: 80, license: null, cocoUrl: null, flickrUrl: null, dateCaptured: null, split: null, extra: null });
      }
      w.appendSamples(c.build());
    }
    if (s.annotations) {
      const c = newAnnotationColumns();
      for (const a of s.annotations) pushAnnotation(c, a);
      w.appendAnnotations(c.build());
    }
    if (s.renumber) w.renumberCategories(...s.renumber);
  }
  const counts = await w.finish([]);
  await w.commit({ id, name: id, format: 'test', sourcePath: '/x', imageDir: '/x', split: null, info: null, pluginStats: null, bytes: 0, ingestSeconds: 0 }, counts);
  return id;
}

/**
 * A dataset's stored rows without its id. Annotations are stored sorted by sample (pages read a
 * narrow range), a sample's own in any order (readers sort them by `ord`): `storageOrder` is
 * the sample of each row as stored.
 */
async function stored(env: TestEnv, id: string) {
  const q = (sql: string) => env.dv.db.query(sql, [id]);
  return {
    storageOrder: (await q(`SELECT sample_ord FROM annotations WHERE dataset_id = $1`)).map((r) => r.sample_ord),
    annotations: await q(`SELECT * EXCLUDE (dataset_id) FROM annotations WHERE dataset_id = $1 ORDER BY sample_ord, ord`),
    samples: await q(`SELECT * EXCLUDE (dataset_id) FROM samples WHERE dataset_id = $1 ORDER BY ord`),
    categories: await q(`SELECT * EXCLUDE (dataset_id) FROM categories WHERE dataset_id = $1 ORDER BY category_id`),
    warnings: (await env.dv.db.query(`SELECT warnings FROM datasets WHERE id = $1`, [id]))[0]!.warnings,
  };
}

describe('annotations written straight into their table (rowsInOrder)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await openTestEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  const cases: [string, Step[]][] = [
    ['kept: every row in order', inOrder],
    ['kept: ids past 32 bits and below 0 (written as two halves)', [
      { images: [0, 1], annotations: [ann(-(2 ** 40) - 3, 0, 0), ann(-7, 0, 1), ann(2 ** 33 + 1, 1, 1), ann(Number.MAX_SAFE_INTEGER, 1, 0)] },
    ]],
    ['kept: more rows than an appender flush (65,536), over many chunks', [
      { images: [0, 1, 2], annotations: Array.from({ length: 70_000 }, (_, k) => ann(k + 1, Math.floor((k * 3) / 70_000), k % 2)) },
    ]],
    ['broken midway: an annotation of an earlier image', [...inOrder, { annotations: [ann(6, 0, 1)] }]],
    ['broken by a row with a quirk', [inOrder[0]!, { images: [2], annotations: [{ ...ann(4, 2, 0), quirks: 2 }] }]],
    ['broken after the rows: categories renumbered', [...inOrder, { renumber: [[0, 1], [1, 0]] }]],
  ];
  for (const [name, steps] of cases) {
    it(`${name}: the rows the staging path stores`, async () => {
      const direct = await stored(env, await write(env, steps, true));
      const staged = await stored(env, await write(env, steps, false));
      expect(direct).toEqual(staged);
      // And each row is its input's, stored sorted by image.
      const input = steps.flatMap((s) => s.annotations ?? []).map((a, ord) => ({ ...a, ord }));
      const swap = steps.some((s) => s.renumber);
      input.sort((x, y) => x.imageId - y.imageId || x.ord - y.ord);
      expect(direct.storageOrder).toEqual(input.map((a) => a.imageId));
      expect(direct.annotations.map((r) => [r.sample_ord, r.ord, r.annotation_id, r.category_id, r.bbox_x, r.extra])).toEqual(
        input.map((a) => [a.imageId, a.ord, a.id, swap ? 1 - a.categoryId : a.categoryId, a.bbox![0], a.extra ? JSON.stringify(a.extra) : null]),
      );
    });
  }

  it('a rollback leaves no row of the directly written annotations', async () => {
    const before = await traces(env.dv);
    const w = await DatasetWriter.begin(env.dv.db, newDatasetId(), null, log, { rowsInOrder: true });
    const imgs = newImageColumns();
    pushImage(imgs, { id: 0, fileName: '0.jpg', width: 1, height: 1, license: null, cocoUrl: null, flickrUrl: null, dateCaptured: null, split: null, extra: null });
    w.appendSamples(imgs.build());
    const c = newAnnotationColumns();
    // More than one appender flush (65,536 rows), so rows have reached the table inside the transaction.
    for (let i = 0; i < 70_000; i++) pushAnnotation(c, ann(i + 1, 0, 0));
    w.appendAnnotations(c.build());
    await w.rollback();
    expect(await traces(env.dv)).toEqual(before);
  });
});
