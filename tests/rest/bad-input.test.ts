import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  DEMO_IMAGES,
  DEMO_JSON,
  expectHealthy,
  getJson,
  ingest,
  ingestOk,
  SLOW,
  startTestServer,
  type TestServer,
} from './helpers.js';

let t: TestServer;
let outside: string;
let datasetId: string;
let cocoText: string;

beforeAll(async () => {
  t = await startTestServer();
  cocoText = await fs.readFile(DEMO_JSON, 'utf8');
  // A folder outside every data root, and links inside the root that lead there.
  outside = path.join(t.tmp, 'outside');
  await fs.mkdir(path.join(outside, 'images'), { recursive: true });
  await fs.writeFile(path.join(outside, 'coco.json'), cocoText);
  await fs.symlink(path.join(outside, 'coco.json'), path.join(t.data, 'link-to-outside.json'));
  await fs.symlink(path.join(outside, 'images'), path.join(t.data, 'link-to-outside-images'));
  datasetId = (await ingestOk(t.base, { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES })).dataset_id!;
}, SLOW);

afterAll(async () => {
  await t?.close();
});

// Whatever a bad request did, the server goes on answering.
afterEach(async () => {
  await expectHealthy(t.base);
});

async function sampleRows(): Promise<number> {
  return Number((await t.dv.db.query('SELECT count(*) AS n FROM samples'))[0]!.n);
}

async function expectError(res: Response, status: number, code: string, message?: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  if (message) expect(body.error.message).toMatch(message);
}

const post = (body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${t.base}/datasets/ingest`, { method: 'POST', headers, body });

describe('ingest requests of the wrong shape answer 400 JSON before any stream starts', { timeout: SLOW }, () => {
  test.each([
    ['an empty object', {}, /"annotation_path" is required/],
    ['no image_dir with format coco', { annotation_path: DEMO_JSON, format: 'coco' }, /body field "image_dir" is required for format "coco"/],
    ['a number for annotation_path', { annotation_path: 5, image_dir: DEMO_IMAGES }, /body field "annotation_path" must be a string \(got 5\)/],
    ['an empty annotation_path', { annotation_path: '', image_dir: DEMO_IMAGES }, /"annotation_path" must not be empty/],
    ['a list for split', { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES, split: ['a'] }, /body field "split" must be a string/],
    ['a boolean for dataset_name', { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES, dataset_name: true }, /"dataset_name" must be a string/],
    ['format kitti', { annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES, format: 'kitti' }, /body field "format" must be one of "auto", "coco".*\(got "kitti"\)/],
    ['an array body', [DEMO_JSON], /request body must be a JSON object/],
  ])('%s', async (_name, body, message) => {
    const res = await post(JSON.stringify(body));
    await expectError(res, 400, 'BAD_USER_INPUT', message);
  });

  test('a body that is not JSON', async () => {
    await expectError(await post('{"annotation_path": '), 400, 'BAD_USER_INPUT', /Malformed JSON/);
  });

  test('no body at all', async () => {
    await expectError(await post(undefined), 400, 'BAD_USER_INPUT', /JSON/);
  });

  test('a body that is not declared as JSON answers 415', async () => {
    const body = JSON.stringify({ annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES });
    await expectError(await post(body, { 'content-type': 'text/plain' }), 415, 'BAD_USER_INPUT', /application\/json/);
  });

  test('a body over 64 KiB answers 413, with or without Content-Length', async () => {
    const big = JSON.stringify({ annotation_path: DEMO_JSON, image_dir: DEMO_IMAGES, dataset_name: 'x'.repeat(70 * 1024) });
    await expectError(await post(big), 413, 'PAYLOAD_TOO_LARGE');
    // Chunked, so the limit is enforced while reading rather than from the header.
    const chunks = [big.slice(0, 40_000), big.slice(40_000)];
    const stream = new ReadableStream({
      pull(c) {
        const next = chunks.shift();
        if (next === undefined) c.close();
        else c.enqueue(new TextEncoder().encode(next));
      },
    });
    const res = await fetch(`${t.base}/datasets/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe('bad ingest sources end the stream with one error event and leave no dataset', { timeout: SLOW }, () => {
  async function expectIngestError(body: Record<string, unknown>, code: string, message?: RegExp) {
    const before = await sampleRows();
    const listed = (await getJson(`${t.base}/datasets`)).body.datasets.length;
    const { res, events } = await ingest(t.base, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const last = events.at(-1)!;
    expect(last).toMatchObject({ stage: 'error', code });
    expect(events.filter((e) => e.stage === 'error' || e.stage === 'complete')).toHaveLength(1);
    if (message) expect(last.message).toMatch(message);
    expect((await getJson(`${t.base}/datasets`)).body.datasets).toHaveLength(listed);
    expect(await sampleRows()).toBe(before);
    return last;
  }

  test('an annotation file that does not exist: FILE_NOT_FOUND', async () => {
    await expectIngestError({ annotation_path: path.join(t.data, 'nope.json'), image_dir: DEMO_IMAGES }, 'FILE_NOT_FOUND', /does not exist/);
  });

  test('an image folder that does not exist: FILE_NOT_FOUND', async () => {
    await expectIngestError({ annotation_path: DEMO_JSON, image_dir: path.join(t.data, 'no-images') }, 'FILE_NOT_FOUND');
  });

  test('a file outside DATAVISOR_DATA_ROOTS: FORBIDDEN', async () => {
    await expectIngestError({ annotation_path: path.join(outside, 'coco.json'), image_dir: DEMO_IMAGES }, 'FORBIDDEN', /outside the allowed data roots/);
  });

  test('a path that climbs out of a root with ../: FORBIDDEN', async () => {
    await expectIngestError({ annotation_path: path.join(t.data, '..', 'outside', 'coco.json'), image_dir: DEMO_IMAGES }, 'FORBIDDEN');
  });

  test('a symlink inside a root that points outside: FORBIDDEN', async () => {
    await expectIngestError({ annotation_path: path.join(t.data, 'link-to-outside.json'), image_dir: DEMO_IMAGES }, 'FORBIDDEN');
    await expectIngestError({ annotation_path: DEMO_JSON, image_dir: path.join(t.data, 'link-to-outside-images') }, 'FORBIDDEN');
  });

  test('malformed JSON: INVALID_JSON naming the byte offset', async () => {
    // Break the file a little way into the images list.
    const at = cocoText.indexOf('"file_name"', 5000);
    const broken = `${cocoText.slice(0, at)}"file_name" ]${cocoText.slice(at + '"file_name"'.length)}`;
    const file = path.join(t.data, 'malformed.json');
    await fs.writeFile(file, broken);
    const e = await expectIngestError({ annotation_path: file, image_dir: DEMO_IMAGES }, 'INVALID_JSON');
    const offset = Buffer.byteLength(cocoText.slice(0, at + '"file_name" '.length));
    // The parser locates the error to the block it was reading (at most 64 KiB), not the exact byte:
    // the message names a byte position at or after the fault, within a block of it.
    expect(e.message).toMatch(/\bbytes?\b/);
    const numbers = (e.message.match(/\d+/g) ?? []).map(Number);
    expect(numbers.some((n) => n >= offset && n - offset < 64 * 1024)).toBe(true);
  });

  test('a truncated file: INVALID_JSON', async () => {
    const file = path.join(t.data, 'truncated.json');
    await fs.writeFile(file, cocoText.slice(0, Math.floor(cocoText.length * 0.6)));
    const e = await expectIngestError({ annotation_path: file, image_dir: DEMO_IMAGES }, 'INVALID_JSON');
    expect(e.message).toMatch(new RegExp(`ends at byte ${Buffer.byteLength(cocoText.slice(0, Math.floor(cocoText.length * 0.6)))}\\b`));
  });
});

describe('unknown ids answer 404 JSON', () => {
  test.each([
    ['GET /datasets/{unknown}', 'GET', '/datasets/zzzzzzzzzzzzzzzz'],
    ['DELETE /datasets/{unknown}', 'DELETE', '/datasets/zzzzzzzzzzzzzzzz'],
    ['GET /datasets/{unknown}/categories', 'GET', '/datasets/zzzzzzzzzzzzzzzz/categories'],
    ['GET /samples of an unknown dataset', 'GET', '/samples?dataset_id=zzzzzzzzzzzzzzzz'],
    ['GET /samples of an unknown dataset, filtered', 'GET', '/samples?dataset_id=zzzzzzzzzzzzzzzz&category=person'],
    ['annotations of an unknown dataset', 'GET', '/samples/9/annotations?dataset_id=zzzzzzzzzzzzzzzz'],
    ['a thumbnail of an unknown dataset', 'GET', '/images/zzzzzzzzzzzzzzzz/9?size=small'],
    ['an original of an unknown dataset', 'GET', '/images/zzzzzzzzzzzzzzzz/9?size=original'],
    ['a dataset id that is not an id', 'GET', '/images/..%2F..%2Fetc/9'],
    ['an unknown route', 'GET', '/no/such/route'],
    ['a method the route does not have', 'PUT', '/datasets'],
  ])('%s', async (_name, method, url) => {
    await expectError(await fetch(`${t.base}${url}`, { method }), 404, 'NOT_FOUND');
  });

  test('unknown samples of a known dataset', async () => {
    for (const url of [
      `/samples/424242/annotations?dataset_id=${datasetId}`,
      `/samples/not-a-number/annotations?dataset_id=${datasetId}`,
      `/images/${datasetId}/424242?size=medium`,
      `/images/${datasetId}/no-such-sample?size=medium`,
      `/images/${datasetId}/424242?size=original`,
      `/images/${datasetId}/1e3`,
    ]) {
      await expectError(await fetch(`${t.base}${url}`), 404, 'NOT_FOUND');
    }
  });
});

describe('bad query parameters answer 400 naming the parameter', () => {
  test.each([
    ['limit 201', 'limit=201', /query parameter "limit" must be at most 200 \(got "201"\)/],
    ['limit -1', 'limit=-1', /"limit" must be at least 0/],
    ['a fractional limit', 'limit=1.5', /"limit" must be an integer/],
    ['a non-numeric limit', 'limit=ten', /"limit" must be a number \(got "ten"\)/],
    ['an empty limit', 'limit=', /"limit" must be a number/],
    ['a negative offset', 'offset=-1', /query parameter "offset" must be at least 0 \(got "-1"\)/],
    ['a non-numeric offset', 'offset=abc', /"offset" must be a number/],
    ['a hex offset', 'offset=0x10', /"offset" must be a number/],
    ['is_crowd not a boolean', 'is_crowd=maybe', /"is_crowd" must be true or false/],
    ['min_annotations negative', 'min_annotations=-2', /"min_annotations" must be at least 0/],
  ])('%s', async (_name, query, message) => {
    await expectError(await fetch(`${t.base}/samples?dataset_id=${datasetId}&${query}`), 400, 'BAD_USER_INPUT', message);
  });

  test('several at once are all named', async () => {
    await expectError(await fetch(`${t.base}/samples?dataset_id=${datasetId}&limit=500&offset=-3`), 400, 'BAD_USER_INPUT', /"offset".*"limit"|"limit".*"offset"/);
  });

  test('dataset_id is required', async () => {
    await expectError(await fetch(`${t.base}/samples?limit=5`), 400, 'BAD_USER_INPUT', /query parameter "dataset_id" is required/);
    await expectError(await fetch(`${t.base}/samples/9/annotations`), 400, 'BAD_USER_INPUT', /"dataset_id" is required/);
  });

  test('limit 0 and 200 are fine', async () => {
    const zero = await getJson(`${t.base}/samples?dataset_id=${datasetId}&limit=0`);
    expect(zero.body).toMatchObject({ items: [], total: 128, limit: 0 });
    const max = await getJson(`${t.base}/samples?dataset_id=${datasetId}&limit=200`);
    expect(max.body.items).toHaveLength(128);
  });

  test('an offset past the end is an empty page, not an error', async () => {
    const page = await getJson(`${t.base}/samples?dataset_id=${datasetId}&offset=1000`);
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ items: [], total: 128, offset: 1000 });
  });

  test('an unknown image size', async () => {
    await expectError(await fetch(`${t.base}/images/${datasetId}/9?size=huge`), 400, 'BAD_USER_INPUT', /"size" must be one of small, medium, large, original \(got "huge"\)/);
  });
});
