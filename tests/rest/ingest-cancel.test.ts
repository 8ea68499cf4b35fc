import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { bigCocoFile, expectHealthy, getJson, ingestOk, parseSse, postIngest, SLOW, sseBlocks, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
let big: string;

beforeAll(async () => {
  // Heartbeats every 25 ms, so a test sees them during a one-second ingest.
  t = await startTestServer({ server: { heartbeatMs: 25 } });
  big = path.join(t.data, 'big.json');
  await fs.copyFile(await bigCocoFile(), big);
  await fs.mkdir(path.join(t.data, 'no-images'));
}, SLOW);

afterAll(async () => {
  await t?.close();
});

async function rowCounts() {
  const [row] = await t.dv.db.query(
    `SELECT (SELECT count(*) FROM samples) AS samples, (SELECT count(*) FROM annotations) AS annotations,
            (SELECT count(*) FROM categories) AS categories, (SELECT count(*) FROM datasets) AS datasets`,
  );
  return row;
}

describe('a client that disconnects mid-ingest cancels it', { timeout: SLOW }, () => {
  test('the stream sends heartbeat comments between events', async () => {
    const abort = new AbortController();
    const res = await postIngest(t.base, { annotation_path: big, image_dir: path.join(t.data, 'no-images'), dataset_name: 'heartbeat' }, { signal: abort.signal });
    let pings = 0;
    let events = 0;
    for await (const block of sseBlocks(res)) {
      if (block === ': ping') pings++;
      else if (block.startsWith('data: ')) events++;
      if (pings >= 2 && events >= 1) break;
    }
    abort.abort();
    expect(pings).toBeGreaterThanOrEqual(2);
    await vi.waitFor(() => expect(t.dv.ingestion.active).toBe(0), { timeout: 30_000, interval: 20 });
  });

  test('aborting the fetch mid-stream rolls the ingest back: no dataset, no rows', async () => {
    const before = await rowCounts();
    const abort = new AbortController();
    const res = await postIngest(t.base, { annotation_path: big, image_dir: path.join(t.data, 'no-images'), dataset_name: 'abandoned' }, { signal: abort.signal });
    expect(res.status).toBe(200);
    const seen: string[] = [];
    for await (const block of sseBlocks(res)) {
      const [event] = parseSse(block);
      if (!event) continue;
      seen.push(event.stage);
      // Well into the file: samples are being appended inside the ingest's transaction.
      if (event.stage === 'parsing_images' && event.current > 0) break;
    }
    abort.abort();
    expect(seen).not.toContain('complete');

    // The generator's finally (rollback) has run once no ingest is active.
    await vi.waitFor(() => expect(t.dv.ingestion.active).toBe(0), { timeout: 30_000, interval: 20 });
    expect(await rowCounts()).toEqual(before);
    const list = await getJson(`${t.base}/datasets`);
    expect(list.body.datasets.map((d: any) => d.name)).not.toContain('abandoned');
    // It was cancelled, not left to finish: the service logged the cancellation.
    expect(t.logs.some((l) => l.code === 'INGEST_CANCELLED')).toBe(true);
    expect(t.logs.some((l) => l.msg === 'client disconnected: cancelling the ingest')).toBe(true);
    await expectHealthy(t.base);
  });

  test('the same file then ingests completely, so nothing of the cancelled run was left behind', async () => {
    const done = await ingestOk(t.base, { annotation_path: big, image_dir: path.join(t.data, 'no-images'), dataset_name: 'complete' });
    expect(done.image_count).toBe(12_000);
    const counts = await rowCounts();
    expect(counts).toMatchObject({ samples: 12_000, annotations: done.annotation_count, categories: 80, datasets: 1 });
    expect((await getJson(`${t.base}/datasets`)).body.datasets.map((d: any) => d.name)).toEqual(['complete']);
  });
});

describe('logs and request ids', () => {
  test('one JSON line per request carries the request id, which the response echoes', async () => {
    const res = await fetch(`${t.base}/health`, { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
    const lines = t.logs.filter((l) => l.req_id === 'trace-abc.123');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request', method: 'GET', path: '/health', status: 200 });
    expect(typeof lines[0]!.ms).toBe('number');
  });

  test('without one (or with an unsafe one) the server makes an id', async () => {
    for (const headers of [{}, { 'x-request-id': 'bad id\twith spaces' }, { 'x-request-id': 'x'.repeat(500) }]) {
      const res = await fetch(`${t.base}/samples?dataset_id=nope`, { headers });
      expect(res.status).toBe(404);
      const id = res.headers.get('x-request-id')!;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(t.logs.filter((l) => l.req_id === id)).toEqual([expect.objectContaining({ status: 404, path: '/samples' })]);
    }
  });

  test('every line an ingest stream writes names its request', async () => {
    const res = await postIngest(t.base, { annotation_path: path.join(t.data, 'nope.json'), image_dir: t.data }, { headers: { 'content-type': 'application/json', 'x-request-id': 'ingest-1' } });
    await res.text();
    const lines = t.logs.filter((l) => l.req_id === 'ingest-1');
    expect(lines.map((l) => l.msg)).toEqual(['request', 'ingest stream ended']);
    expect(lines[1]).toMatchObject({ stage: 'error', code: 'FILE_NOT_FOUND' });
  });
});
