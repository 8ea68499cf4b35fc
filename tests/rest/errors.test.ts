import { Writable } from 'node:stream';
import { HTTPException } from 'hono/http-exception';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toErrorResponse } from '../../dist/rest/errors.js';
import { DataVisorError } from '../../dist/services/errors.js';
import { getJson, SLOW, startTestServer, type TestServer } from './helpers.js';

/** The one place REST maps failures: src/rest/errors.ts. */
function capture() {
  const lines: Record<string, any>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  return { log, lines };
}

describe('toErrorResponse', () => {
  test('a DataVisorError keeps its code and message, with the status of HTTP_STATUS, unlogged', async () => {
    const { log, lines } = capture();
    const res = toErrorResponse(new DataVisorError('NOT_FOUND', 'dataset "x" does not exist'), log);
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'dataset "x" does not exist' } });
    expect(lines).toEqual([]);
  });

  test('a framework HTTPException keeps its status', async () => {
    const { log } = capture();
    const tooBig = toErrorResponse(new HTTPException(413), log);
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    const malformed = toErrorResponse(new HTTPException(400, { message: 'Malformed JSON in request body' }), log);
    expect(await malformed.json()).toEqual({ error: { code: 'BAD_USER_INPUT', message: 'Malformed JSON in request body' } });
  });

  test('anything else is logged once with its stack and answers 500 "Unexpected error." without details', async () => {
    const { log, lines } = capture();
    const res = toErrorResponse(new TypeError('cannot read x of /srv/secret/path'), log);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'Unexpected error.' } });
    expect(text).not.toContain('secret');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, err: { type: 'TypeError', message: 'cannot read x of /srv/secret/path' } });
    expect(lines[0]!.err.stack).toContain('TypeError');
  });

  test('a DataVisorError of a 5xx status is logged too', () => {
    const { log, lines } = capture();
    expect(toErrorResponse(new DataVisorError('UNAVAILABLE', 'The database is closed'), log).status).toBe(503);
    expect(lines).toHaveLength(1);
  });
});

describe('through the server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  }, SLOW);
  afterAll(async () => {
    await t?.close();
  });

  test('while the database is closed (shutdown), routes answer 503 UNAVAILABLE and /health still answers', async () => {
    t.dv.db.close();
    const r = await getJson(`${t.base}/datasets`);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('UNAVAILABLE');
    expect(r.res.headers.get('x-request-id')).toBeTruthy();
    expect((await getJson(`${t.base}/health`)).body).toEqual({ status: 'ok' });
  });
});
