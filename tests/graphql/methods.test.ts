import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startHarness, type Harness } from './harness.js';

/**
 * Every method on /graphql and /graphql/stream, sent with node:http so the status line and the
 * raw headers are seen as a client sees them (fetch refuses TRACE and hides the reason phrase).
 */

interface Raw {
  status: number;
  reason: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, reason: res.statusMessage!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const REFUSED = ['HEAD', 'PUT', 'DELETE', 'PATCH', 'TRACE', 'PROPFIND'];
const ENDPOINTS = [
  { path: '/graphql', allow: 'GET, POST', refused: REFUSED },
  { path: '/graphql/stream', allow: 'GET, POST, PUT, DELETE', refused: ['HEAD', 'PATCH', 'TRACE', 'PROPFIND'] },
];

describe.each(ENDPOINTS)('$path', ({ path, allow, refused }) => {
  test.each(refused)('%s answers 405 Method Not Allowed with Allow and a JSON error', async (method) => {
    const res = await send(h.base, method, path);
    expect(res.status).toBe(405);
    expect(res.reason).toBe('Method Not Allowed');
    expect(res.headers.allow).toBe(allow);
    expect(Object.keys(res.headers)).not.toContain('headersinit');
    if (method === 'HEAD') {
      expect(res.body).toBe('');
      return;
    }
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(res.body);
    expect(body).toEqual({ error: { code: 'BAD_USER_INPUT', message: `${method} is not allowed on ${path}: use ${allow.replace(/, (\w+)$/, ' or $1')}` } });
  });

  test('OPTIONS answers 204 with Allow', async () => {
    const res = await send(h.base, 'OPTIONS', path);
    expect(res.status).toBe(204);
    expect(res.headers.allow).toBe(allow);
  });
});

describe('the allowed methods still reach GraphQL', () => {
  test('GET and POST /graphql', async () => {
    const get = await send(h.base, 'GET', `/graphql?query=${encodeURIComponent('{ datasets { totalCount } }')}`, { accept: 'application/json' });
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toEqual({ data: { datasets: { totalCount: 0 } } });
    const post = await send(h.base, 'POST', '/graphql', { 'content-type': 'application/json' }, JSON.stringify({ query: '{ datasets { totalCount } }' }));
    expect(post.status).toBe(200);
  });

  test("graphql-sse's single-connection methods on /graphql/stream: PUT reserves, DELETE of an unknown operation is graphql-sse's own answer", async () => {
    const put = await send(h.base, 'PUT', '/graphql/stream');
    expect(put.status).toBe(201);
    const token = put.body;
    expect(token).toMatch(/^[\w-]+$/);
    const del = await send(h.base, 'DELETE', '/graphql/stream?operationId=nope', { 'x-graphql-event-stream-token': token });
    expect(del.status).not.toBe(405);
    const get = await send(h.base, 'GET', '/graphql/stream');
    expect(get.status).not.toBe(405);
  });
});
