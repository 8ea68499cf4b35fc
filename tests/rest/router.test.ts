import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer } from '../../dist/server.js';
import { SLOW, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
}, SLOW);

afterAll(async () => {
  await t?.close();
});

describe('routing (src/rest/method-router.ts)', () => {
  test('GET, which serves thumbnails and pages, is matched by the one-regex router; POST falls back where it must', () => {
    const router = createServer(t.dv).router as unknown as { activeRouterName(method: string): string };
    expect(router.activeRouterName('GET')).toBe('RegExpRouter');
    // `POST /datasets/ingest` beside `POST /datasets/:id/…`: what RegExpRouter cannot hold.
    expect(router.activeRouterName('POST')).toBe('TrieRouter');
  });

  test('a static segment and a parameter at the same place both route, per method', async () => {
    const ingest = await fetch(`${t.base}/datasets/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(ingest.status).toBe(400);
    expect((await ingest.json()).error.message).toMatch(/annotation_path/);
    const predictions = await fetch(`${t.base}/datasets/aaaaaaaaaaaaaaaa/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', results_path: '/nowhere.json' }) });
    // The import answers with its event stream, whose error event names the unknown dataset.
    expect(predictions.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await predictions.text()).toMatch(/"stage":"error".*aaaaaaaaaaaaaaaa.*does not exist.*"code":"NOT_FOUND"/s);
    // Middleware registered for every method (the request id) runs on each.
    expect(ingest.headers.get('x-request-id')).toBeTruthy();
    const head = await fetch(`${t.base}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-request-id')).toBeTruthy();
  });
});
