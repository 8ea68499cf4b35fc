import { PutObjectCommand } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent } from '../../dist/services/ingest/ingest.js';
import { ingestAll, openTestEnv, type TestEnv } from '../helpers/env.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

/**
 * A YOLO dataset in an S3 bucket (s3rver on 127.0.0.1): the YAML, its splits (a folder and a .txt
 * list) and their label files are read through the bucket's store, as local ones are from disk.
 */

let s3: S3TestServer;
let env: TestEnv;

const put = (key: string, body: string | Buffer) => s3.client.send(new PutObjectCommand({ Bucket: 'datasets', Key: key, Body: body }));
const jpeg = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#3070a0' } }).jpeg().toBuffer();

beforeAll(async () => {
  s3 = await startS3Server(['datasets']);
  env = await openTestEnv({ ...s3.env, DATAVISOR_DATA_ROOTS: 's3://datasets/yolo' }, { storage: { listPageSize: 2 } });
  await put('yolo/data.yaml', 'train: images/train\nval: images/val\ntest: test.txt\nnames: {0: ant, 1: bee}\n');
  await put('yolo/images/train/a.jpg', await jpeg(100, 50));
  await put('yolo/labels/train/a.txt', '0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n');
  await put('yolo/images/train/b.jpg', await jpeg(40, 40)); // no label: background
  await put('yolo/images/train/c.jpg', 'not a jpeg');
  await put('yolo/labels/train.cache', 'cache');
  await put('yolo/images/val/sub/d.jpg', await jpeg(64, 32));
  await put('yolo/labels/val/sub/d.txt', '1 0.25 0.25 0.5 0.5 0.75 0.75\n7 0.5 0.5 0.1 0.1\n');
  await put('yolo/test.txt', './images/test/e.jpg\n');
  await put('yolo/images/test/e.jpg', await jpeg(10, 20));
  await put('yolo/labels/test/e.txt', '0 0.5 0.5 1 1\n');
});

afterAll(async () => {
  await env?.close();
  await s3?.stop();
});

describe('a YOLO dataset in a bucket', () => {
  let done: IngestEvent;

  beforeAll(async () => {
    const events = await ingestAll(env.dv, { annotationPath: 's3://datasets/yolo/data.yaml', format: 'yolo' });
    done = events.at(-1)!;
    expect(done.stage, done.message).toBe('complete');
  });

  it('has its splits, names relative to the common folder, and sizes from ranged reads of the headers', async () => {
    const ds = await env.dv.datasets.get(done.dataset_id!);
    expect([ds.imageDir, ds.sourcePath, ds.name]).toEqual(['s3://datasets/yolo/images', 's3://datasets/yolo/data.yaml', 'yolo']);
    const { samples } = await env.dv.samples.page(done.dataset_id!, {}, { kind: 'after', afterOrd: null, limit: 50 });
    expect(samples.map((s) => [s.id, s.fileName, s.split, s.width, s.height, s.annotationCount, s.fileMissing])).toEqual([
      [0, 'train/a.jpg', 'train', 100, 50, 2, false],
      [1, 'train/b.jpg', 'train', 40, 40, 0, false],
      [2, 'train/c.jpg', 'train', null, null, 0, false],
      [3, 'val/sub/d.jpg', 'val', 64, 32, 2, false],
      [4, 'test/e.jpg', 'test', 10, 20, 1, false],
    ]);
    const anns = (await env.dv.samples.annotationsOf(done.dataset_id!, samples.map((s) => s.ord))).flat();
    expect(anns.map((a) => [a.id, a.categoryName, [a.bbox!.x, a.bbox!.y, a.bbox!.w, a.bbox!.h].map((v) => Math.round(v * 1000) / 1000), a.segmentationKind])).toEqual([
      [1, 'ant', [40, 15, 20, 20], 'none'],
      [2, 'bee', [5, 2.5, 10, 5], 'none'],
      // A triangle (0.25,0.25) (0.5,0.5) (0.75,0.75) on 64×32: its extent.
      [3, 'bee', [16, 8, 32, 16], 'polygon'],
      [4, 'class_7', [28.8, 14.4, 6.4, 3.2], 'none'],
      [5, 'ant', [0, 0, 10, 20], 'none'],
    ]);
    expect(done.warnings!.map((w) => [w.code, w.count])).toEqual([
      ['images_without_annotations', 2],
      ['images_without_size', 1],
      ['image_headers_unreadable', 1],
      ['unknown_class_ids', 1],
    ]);
  });

  it('serves an original from the bucket by its file name', async () => {
    const img = await env.dv.storage.imageSource('s3://datasets/yolo/images', 'val/sub/d.jpg');
    expect((await sharp(img as Buffer).metadata()).width).toBe(64);
  });
});
