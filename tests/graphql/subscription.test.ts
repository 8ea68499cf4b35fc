import fs from 'node:fs/promises';
import path from 'node:path';
import { createClient, type ExecutionResult } from 'graphql-sse';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { codes, DEMO_IMAGES, DEMO_JSON, readCoco, startHarness, type Harness } from './harness.js';

/**
 * Subscription.ingestDataset over graphql-sse at /graphql/stream, driven by graphql-sse's own
 * client in both of its modes.
 */

let h: Harness;
let bigFile: string;
/** Every JSON line the server logged. */
const logs: Record<string, unknown>[] = [];

/** Lines logged since `from` about cancelling an ingest: the service's INGEST_CANCELLED line and the adapter's. */
function cancelLines(from: number) {
  return logs.slice(from).filter((l) => l.code === 'INGEST_CANCELLED' || l.msg === 'client disconnected: cancelling the ingest');
}

const SUB = `subscription($input: IngestInput!) {
  ingestDataset(input: $input) {
    stage current total message datasetId bytesRead bytesTotal imageCount annotationCount categoryCount
    warnings { code count }
    dataset { datasetId name imageCount }
  }
}`;

type Progress = {
  stage: string;
  current: number;
  total: number | null;
  datasetId: string | null;
  bytesRead: number;
  bytesTotal: number;
  imageCount: number | null;
  annotationCount: number | null;
  categoryCount: number | null;
  dataset: { datasetId: string; name: string; imageCount: number } | null;
};

const client = (singleConnection: boolean) => createClient({ url: `${h.base}/graphql/stream`, fetchFn: fetch, singleConnection, retryAttempts: 0 });

async function collect(singleConnection: boolean, input: Record<string, unknown>) {
  const c = client(singleConnection);
  const results: ExecutionResult<{ ingestDataset: Progress }>[] = [];
  try {
    for await (const r of c.iterate<{ ingestDataset: Progress }>({ query: SUB, variables: { input } })) results.push(r);
  } finally {
    c.dispose();
  }
  return results;
}

/** Rows the datasets own, and rows of any table in all: equal when nothing was left behind. */
async function leftovers() {
  const datasets = await h.dv.datasets.list();
  const [samples] = await h.dv.db.query<{ n: number }>('SELECT count(*) AS n FROM samples');
  return { datasets: datasets.length, orphanSamples: samples!.n - datasets.reduce((n, d) => n + d.imageCount, 0) };
}

beforeAll(async () => {
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  h = await startHarness({ log });
  // 100,000 tiny images and annotations: an ingest of about two seconds, to cancel in the middle.
  const parts = ['{"categories":[{"id":1,"name":"thing"}],"images":['];
  for (let i = 0; i < 100_000; i++) parts.push(`${i ? ',' : ''}{"id":${i + 1},"file_name":"img_${i}.jpg","width":640,"height":480}`);
  parts.push('],"annotations":[');
  for (let i = 0; i < 100_000; i++) parts.push(`${i ? ',' : ''}{"id":${i + 1},"image_id":${i + 1},"category_id":1,"bbox":[1,2,3,4],"area":12,"iscrowd":0}`);
  parts.push(']}');
  bigFile = path.join(h.tmp, 'big.json');
  await fs.writeFile(bigFile, parts.join(''));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

test('the HTTP server routes graphql-sse single-connection requests (PUT reserves a stream) to GraphQL', async () => {
  const res = await fetch(`${h.base}/graphql/stream`, { method: 'PUT' });
  // graphql-sse answers a reservation with its token (text/plain, 201).
  expect(res.status, 'src/server.ts must route PUT and DELETE /graphql/stream to the GraphQL handler').toBe(201);
  expect((await res.text()).length).toBeGreaterThan(0);
});

describe.each([false, true])('ingestDataset with singleConnection: %s', (singleConnection) => {
  test('streams every stage in order and the dataset is queryable after COMPLETE', async () => {
    const results = await collect(singleConnection, { annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES, datasetName: `sse-${singleConnection}` });
    expect(results.every((r) => r.errors === undefined)).toBe(true);
    const events = results.map((r) => r.data!.ingestDataset);
    const stages = events.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1]);
    // The file's own section order decides where CATEGORIES falls: last in the demo, as in COCO 2017.
    const sections = Object.keys(JSON.parse(await fs.readFile(DEMO_JSON, 'utf8')));
    const parsing = sections.flatMap((k) => ({ categories: 'CATEGORIES', images: 'PARSING_IMAGES', annotations: 'PARSING_ANNOTATIONS' })[k] ?? []);
    expect(parsing).toEqual(['PARSING_IMAGES', 'PARSING_ANNOTATIONS', 'CATEGORIES']);
    expect(stages).toEqual([...parsing, 'THUMBNAILS', 'COMPLETE']);
    for (const stage of stages) {
      const currents = events.filter((e) => e.stage === stage).map((e) => e.current);
      expect(currents).toEqual([...currents].sort((a, b) => a - b));
    }
    expect(events.every((e) => e.bytesTotal === events[0]!.bytesTotal && e.bytesRead <= e.bytesTotal)).toBe(true);
    const done = events.at(-1)!;
    const coco = await readCoco();
    expect(done).toMatchObject({
      stage: 'COMPLETE', imageCount: 128, annotationCount: coco.annotations.length, categoryCount: coco.categories.length, total: 128, current: 128,
    });
    expect(done.dataset).toEqual({ datasetId: done.datasetId, name: `sse-${singleConnection}`, imageCount: 128 });
    expect(events.slice(0, -1).every((e) => e.datasetId === null && e.dataset === null)).toBe(true);

    const q = await h.gql(`query($id: ID!) { dataset(id: $id) { imageCount } samples(datasetId: $id, first: 1) { totalCount } }`, { id: done.datasetId });
    expect(q.data).toEqual({ dataset: { imageCount: 128 }, samples: { totalCount: 128 } });
  });

  test.each([
    ['a missing annotation file', { annotationPath: path.join(path.dirname(DEMO_JSON), 'missing.json'), imageDir: DEMO_IMAGES }, 'NOT_FOUND', /does not exist/],
    ['a file outside the data roots', { annotationPath: '/etc/hostname', imageDir: DEMO_IMAGES }, 'FORBIDDEN', /outside the allowed data roots/],
    ['an unknown format', { annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES, format: 'kitti' }, 'BAD_USER_INPUT', /format "kitti" is not supported/],
  ])('%s ends the stream with one error: %s', async (_what, input, code, message) => {
    const before = await leftovers();
    const results = await collect(singleConnection, input);
    expect(results).toHaveLength(1);
    expect(results[0]!.data ?? null).toBeNull();
    expect(codes({ status: 200, errors: results[0]!.errors as never })).toEqual([code]);
    expect(results[0]!.errors![0]!.message).toMatch(message);
    // extensions.http steers HTTP answers only; it never reaches a client.
    expect(results[0]!.errors![0]!.extensions).not.toHaveProperty('http');
    expect(await leftovers()).toEqual(before);
  });

  test('malformed JSON is INGEST_FAILED with the byte offset, and leaves nothing behind', async () => {
    const file = path.join(h.tmp, `malformed-${singleConnection}.json`);
    await fs.writeFile(file, '{"categories": [{"id": 1, "name": "a"}], "images": [{"id": 1, "file_name": "a.jpg",, }]}');
    const before = await leftovers();
    const results = await collect(singleConnection, { annotationPath: file, imageDir: h.tmp });
    const last = results.at(-1)!;
    expect(codes({ status: 200, errors: last.errors as never })).toEqual(['INGEST_FAILED']);
    expect(last.errors![0]!.extensions).toMatchObject({ reason: 'INVALID_JSON' });
    expect(last.errors![0]!.message).toMatch(/bytes? \d+/);
    expect(results.slice(0, -1).every((r) => r.errors === undefined)).toBe(true);
    expect(await leftovers()).toEqual(before);
  });

  test('unsubscribing in the middle cancels the ingest and rolls it back', async () => {
    const before = await leftovers();
    const logged = logs.length;
    const c = client(singleConnection);
    const seen: string[] = [];
    for await (const r of c.iterate<{ ingestDataset: Progress }>({ query: SUB, variables: { input: { annotationPath: bigFile, imageDir: h.tmp } } })) {
      seen.push(r.data!.ingestDataset.stage);
      // Leaving the loop calls return(): the client closes its stream (or, in single-connection
      // mode, tells the server to complete the operation).
      if (r.data!.ingestDataset.stage === 'PARSING_IMAGES') break;
    }
    await vi.waitFor(() => expect(h.dv.ingestion.active).toBe(0), { timeout: 10_000, interval: 20 });
    c.dispose();
    expect(seen.at(-1)).toBe('PARSING_IMAGES');
    expect(await leftovers()).toEqual(before);
    // Logged as REST logs a client that goes away: the adapter's line, then the service's.
    expect(cancelLines(logged)).toEqual([
      expect.objectContaining({ msg: 'client disconnected: cancelling the ingest', stage: 'parsing_images' }),
      expect.objectContaining({ level: 40, msg: 'ingest failed', code: 'INGEST_CANCELLED', reason: 'Ingestion cancelled: the client disconnected' }),
    ]);
  });
});

describe('the graphql-sse protocol without its client', () => {
  test('a plain POST asking for text/event-stream (distinct connections) streams to COMPLETE', async () => {
    const res = await fetch(`${h.base}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: SUB, variables: { input: { annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES } } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await res.text();
    expect(body).toMatch(/"stage":"COMPLETE"/);
    expect(body.trimEnd()).toMatch(/event: complete\s*\ndata:\s*$/);
  });

  test('a variable named unlike its argument reaches the resolver (graphql-jit once lost it)', async () => {
    const res = await fetch(`${h.base}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: 'subscription($i: IngestInput!) { ingestDataset(input: $i) { stage datasetId } }',
        variables: { i: { annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES, datasetName: 'renamed-variable' } },
      }),
    });
    const body = await res.text();
    expect(body).not.toMatch(/"errors"/);
    expect(body).toMatch(/"stage":"COMPLETE","datasetId":"[a-z0-9]+"/);
    const id = /"stage":"COMPLETE","datasetId":"([a-z0-9]+)"/.exec(body)![1]!;
    const renamed = await h.gql(`mutation($x: ID!) { deleteDataset(id: $x) }`, { x: id });
    expect(renamed.data).toEqual({ deleteDataset: id });
  });

  test('closing the connection cancels the ingest and rolls it back', async () => {
    const before = await leftovers();
    const logged = logs.length;
    const abort = new AbortController();
    const res = await fetch(`${h.base}/graphql/stream`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: SUB, variables: { input: { annotationPath: bigFile, imageDir: h.tmp } } }),
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('PARSING_IMAGES')) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    await vi.waitFor(() => expect(h.dv.ingestion.active).toBe(0), { timeout: 10_000, interval: 20 });
    expect(await leftovers()).toEqual(before);
    expect(cancelLines(logged)).toEqual([
      expect.objectContaining({ msg: 'client disconnected: cancelling the ingest', stage: 'parsing_images' }),
      expect.objectContaining({ level: 40, msg: 'ingest failed', code: 'INGEST_CANCELLED', reason: 'Ingestion cancelled: the client disconnected' }),
    ]);
  });

  test('an invalid operation is answered with its errors, and nothing starts', async () => {
    for (const query of ['subscription { ingestDataset(input: {}) { nope } }', 'subscription { ingestDataset(']) {
      const res = await fetch(`${h.base}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query }),
      });
      const body = await res.text();
      expect(body, query).toMatch(/event: next\ndata: \{"data":null,"errors":\[\{"message":"(Field |Syntax Error)/);
      expect(body).not.toMatch(/Unable to detect/);
    }
    expect(h.dv.ingestion.active).toBe(0);
  });

  test('a subscription is never started by a GET', async () => {
    const url = new URL(`${h.base}/graphql/stream`);
    url.searchParams.set('query', SUB);
    url.searchParams.set('variables', JSON.stringify({ input: { annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES } }));
    const res = await fetch(url, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(405);
    expect((await res.json()).errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(h.dv.ingestion.active).toBe(0);
  });
});
