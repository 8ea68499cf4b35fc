import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH, dist, SAMPLE_ID, startSecured, type Harness } from './helpers.js';
import { startHarness } from '../graphql/harness.js';

/**
 * DATAVISOR_CORS_ORIGINS: listed origins may call the API from their pages (with the token in
 * Authorization); preflights are answered without the token; other origins get no CORS headers,
 * so browsers keep the answers from their pages.
 */

const { loadSettings } = dist<typeof import('../../dist/config.js')>('config.js');

const APP = 'http://app.example.test';
const DEV = 'http://localhost:5173';
const EVIL = 'http://evil.example.test';

let h: Harness;
let id: string;

beforeAll(async () => {
  // Written as people do: spaces, a trailing slash, upper case.
  h = await startSecured({ DATAVISOR_CORS_ORIGINS: ` ${APP}/ , HTTP://LOCALHOST:5173 ` });
  id = await h.ingest();
});

afterAll(async () => {
  await h?.close();
});

function preflight(origin: string, path: string, method: string, headers: string) {
  return fetch(`${h.base}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
  });
}

describe('with a list of origins and a token', () => {
  test.each([APP, DEV])('a preflight from %s is answered without the token and allows Authorization', async (origin) => {
    for (const [path, method, headers] of [
      [`/samples?dataset_id=${id}`, 'GET', 'authorization'],
      ['/graphql', 'POST', 'authorization,content-type'],
      ['/graphql/stream', 'PUT', 'authorization'],
      ['/datasets/ingest', 'POST', 'authorization,content-type'],
      [`/datasets/${id}`, 'DELETE', 'authorization'],
    ] as const) {
      const res = await preflight(origin, path, method, headers);
      expect(res.status, path).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect(res.headers.get('access-control-allow-methods')?.split(',')).toContain(method);
      const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase().split(',');
      for (const h of headers.split(',')) expect(allowed).toContain(h);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('vary')).toMatch(/Origin/);
    }
  });

  test('a request from a listed origin gets its origin back and sees ETag, also on a 401', async () => {
    const res = await fetch(`${h.base}/images/${id}/${SAMPLE_ID}?size=small`, { headers: { origin: APP, ...AUTH } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-expose-headers')?.toLowerCase().split(/,\s*/)).toEqual(expect.arrayContaining(['etag', 'x-request-id']));
    expect(res.headers.get('vary')).toMatch(/Origin/);
    await res.arrayBuffer();
    // The page can read why it was refused.
    const refused = await fetch(`${h.base}/datasets`, { headers: { origin: APP } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(APP);
  });

  test('another origin gets no Access-Control-Allow-Origin, on preflights and requests alike', async () => {
    const pre = await preflight(EVIL, '/samples', 'GET', 'authorization');
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await fetch(`${h.base}/datasets`, { headers: { origin: EVIL, ...AUTH } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    await res.arrayBuffer();
  });

  test('OPTIONS is the only thing open: the request after the preflight still needs the token', async () => {
    const res = await fetch(`${h.base}/datasets`, { headers: { origin: APP } });
    expect(res.status).toBe(401);
  });
});

describe('with *', () => {
  let open: Harness;

  beforeAll(async () => {
    open = await startHarness({ env: { DATAVISOR_CORS_ORIGINS: '*' } });
  });

  afterAll(async () => {
    await open?.close();
  });

  test('any origin may read, and a preflight says so', async () => {
    const res = await fetch(`${open.base}/datasets`, { headers: { origin: EVIL } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const pre = await fetch(`${open.base}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('the setting', () => {
  const load = (v: string) => loadSettings({ DATAVISOR_CORS_ORIGINS: v }, '/tmp').corsOrigins;

  test('is normalised as browsers write origins', () => {
    expect(load('')).toEqual([]);
    expect(load(' https://A.example.com/ ,http://localhost:80,http://127.0.0.1:3000')).toEqual(['https://a.example.com', 'http://localhost', 'http://127.0.0.1:3000']);
    expect(load('*')).toEqual(['*']);
  });

  test.each(['localhost:3000', 'https://a.example.com/app', 'ftp://a.example.com', 'https://a.example.com?x=1', '*,https://a.example.com', 'not a url'])(
    'refuses %j at start',
    (v) => {
      expect(() => load(v)).toThrow(/DATAVISOR_CORS_ORIGINS/);
    },
  );
});
