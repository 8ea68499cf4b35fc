import { createClient, type ExecutionResult } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH, refusal, SAMPLE_ID, startSecured, tinyCoco, TOKEN, type Harness } from './helpers.js';

/**
 * DATAVISOR_API_TOKEN: every route but /health answers 401 without the token or with a wrong
 * one, and works with it: REST, the ingest event stream, /openapi.json, GraphQL and the
 * graphql-sse subscription endpoint.
 */

let h: Harness;
let id: string;

beforeAll(async () => {
  h = await startSecured();
  id = await h.ingest();
});

afterAll(async () => {
  await h?.close();
});

interface Probe {
  name: string;
  method: string;
  path: () => string;
  headers?: Record<string, string>;
  body?: () => string;
  /** Status with the right token. */
  ok: number;
}

const json = { 'content-type': 'application/json' };
const PROBES: Probe[] = [
  { name: 'datasets', method: 'GET', path: () => '/datasets', ok: 200 },
  { name: 'one dataset', method: 'GET', path: () => `/datasets/${id}`, ok: 200 },
  { name: 'categories', method: 'GET', path: () => `/datasets/${id}/categories`, ok: 200 },
  // An unknown id: the right token gets as far as the 404, and nothing real is deleted.
  { name: 'delete', method: 'DELETE', path: () => '/datasets/aaaaaaaaaaaaaaaa', ok: 404 },
  { name: 'samples', method: 'GET', path: () => `/samples?dataset_id=${id}&limit=5`, ok: 200 },
  { name: 'annotations', method: 'GET', path: () => `/samples/${SAMPLE_ID}/annotations?dataset_id=${id}`, ok: 200 },
  { name: 'thumbnail', method: 'GET', path: () => `/images/${id}/${SAMPLE_ID}?size=small`, ok: 200 },
  { name: 'original', method: 'GET', path: () => `/images/${id}/${SAMPLE_ID}?size=original`, ok: 200 },
  { name: 'original HEAD', method: 'HEAD', path: () => `/images/${id}/${SAMPLE_ID}?size=original`, ok: 200 },
  { name: 'openapi', method: 'GET', path: () => '/openapi.json', ok: 200 },
  // A body the schema refuses: the token is checked before anything is ingested or validated.
  { name: 'ingest', method: 'POST', path: () => '/datasets/ingest', headers: json, body: () => '{"annotation_path":1}', ok: 400 },
  { name: 'graphql POST', method: 'POST', path: () => '/graphql', headers: json, body: () => '{"query":"{ datasets(first: 1) { totalCount } }"}', ok: 200 },
  { name: 'graphql GET', method: 'GET', path: () => '/graphql?query=%7B__typename%7D', headers: { accept: 'application/json' }, ok: 200 },
  // graphql-sse's reservation (single-connection mode) and a distinct-connection stream.
  { name: 'graphql/stream PUT', method: 'PUT', path: () => '/graphql/stream', ok: 201 },
  {
    name: 'graphql/stream POST',
    method: 'POST',
    path: () => '/graphql/stream',
    headers: { ...json, accept: 'text/event-stream' },
    body: () => '{"query":"{ __typename }"}',
    ok: 200,
  },
  // No route: the token comes first, so an anonymous client learns nothing about the routes.
  { name: 'unknown route', method: 'GET', path: () => '/nope', ok: 404 },
  { name: 'unknown image path', method: 'GET', path: () => `/images/${id}/${SAMPLE_ID}/extra`, ok: 404 },
];

const send = (p: Probe, auth: Record<string, string>) =>
  fetch(`${h.base}${p.path()}`, { method: p.method, headers: { ...p.headers, ...auth }, body: p.body?.() });

describe('with DATAVISOR_API_TOKEN set', () => {
  test('/health stays open', async () => {
    const res = await fetch(`${h.base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  test.each(PROBES)('$method $name: 401 without a token', async (p) => {
    const res = await send(p, {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(res.headers.get('cache-control')).toBe('no-store');
    if (p.method !== 'HEAD') expect((await refusal(res)).code).toBe('UNAUTHENTICATED');
  });

  test.each(PROBES)('$method $name: 401 with a wrong token', async (p) => {
    for (const auth of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer ', `Basic ${TOKEN}`, TOKEN, `Bearer${TOKEN}`]) {
      const res = await send(p, { authorization: auth });
      expect(res.status, auth).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      if (p.method !== 'HEAD') expect((await refusal(res)).code).toBe('UNAUTHENTICATED');
      else await res.arrayBuffer();
    }
  });

  test.each(PROBES)('$method $name: answers with the right token', async (p) => {
    const res = await send(p, AUTH);
    expect(res.status).toBe(p.ok);
    await res.arrayBuffer();
  });

  test('the scheme is case-insensitive and extra spaces are tolerated (RFC 7235)', async () => {
    for (const auth of [`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}`]) {
      expect((await fetch(`${h.base}/datasets`, { headers: { authorization: auth } })).status, auth).toBe(200);
    }
  });

  test('missing and wrong tokens differ only in the message', async () => {
    const missing = await fetch(`${h.base}/datasets`);
    const wrong = await fetch(`${h.base}/datasets`, { headers: { authorization: 'Bearer nope' } });
    expect(missing.status).toBe(wrong.status);
    expect(missing.headers.get('www-authenticate')).toBe(wrong.headers.get('www-authenticate'));
    expect((await refusal(missing)).message).toMatch(/Authorization: Bearer/);
    expect((await refusal(wrong)).message).toMatch(/not valid/);
  });

  test('the ingest event stream runs to complete with the token', async () => {
    const res = await fetch(`${h.base}/datasets/ingest`, { method: 'POST', headers: { ...json, ...AUTH }, body: JSON.stringify(await tinyCoco(h)) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text).toContain('"stage":"complete"');
  });

  test('/openapi.json declares the bearer scheme; /health is open in it', async () => {
    const doc = (await (await fetch(`${h.base}/openapi.json`, { headers: AUTH })).json()) as any;
    expect(doc.components.securitySchemes.bearerToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerToken: [] }]);
    expect(doc.paths['/health'].get.security).toEqual([]);
    const params = (doc.paths['/images/{dataset_id}/{sample_id}'].get.parameters as { name: string }[]).map((p) => p.name);
    expect(params).toEqual(expect.arrayContaining(['size', 'exp', 'sig']));
  });

  test('GraphiQL\'s page loads without the token (a browser navigation cannot send it) but names no dataset', async () => {
    const res = await fetch(`${h.base}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    // Booleans: a failing string match would print the 9 MB page.
    expect(html.includes('YogaGraphiQL')).toBe(true);
    expect(html.includes(id), 'the page names the newest dataset').toBe(false);
    // The options are JSON in a <script>, with `<` escaped (src/schema/graphiql-page.ts).
    expect(html.includes('Bearer \\u003cDATAVISOR_API_TOKEN>'), 'the Headers tab starts with the header to fill in').toBe(true);
    // The page is all that is open: a GET that yoga would render GraphiQL for never executes,
    // even with a query in it, and anything else needs the token.
    const query = await fetch(`${h.base}/graphql?query=%7Bdatasets(first:1)%7BtotalCount%7D%7D`, { headers: { accept: 'application/json, text/html;q=0.1' } });
    expect(query.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await query.text();
    expect(page.includes('YogaGraphiQL')).toBe(true);
    expect(/"totalCount":\d/.test(page), 'the query was executed').toBe(false);
    const post = await fetch(`${h.base}/graphql`, { method: 'POST', headers: { ...json, accept: 'text/html' }, body: '{"query":"{ __typename }"}' });
    expect(post.status).toBe(401);
  });
});

describe('the subscription (graphql-sse at /graphql/stream)', () => {
  const SUB = 'subscription($input: IngestInput!) { ingestDataset(input: $input) { stage datasetId } }';

  async function run(singleConnection: boolean, headers?: Record<string, string>) {
    const client = createClient({ url: `${h.base}/graphql/stream`, fetchFn: fetch, singleConnection, retryAttempts: 0, headers });
    const results: ExecutionResult<{ ingestDataset: { stage: string; datasetId: string | null } }>[] = [];
    const input = await tinyCoco(h);
    try {
      for await (const r of client.iterate<{ ingestDataset: { stage: string; datasetId: string | null } }>({
        query: SUB,
        variables: { input: { annotationPath: input.annotation_path, imageDir: input.image_dir } },
      })) {
        results.push(r);
      }
    } finally {
      client.dispose();
    }
    return results;
  }

  test.each([false, true])('singleConnection %s: streams to COMPLETE with the token', async (single) => {
    const results = await run(single, AUTH);
    expect(results.at(-1)?.data?.ingestDataset.stage).toBe('COMPLETE');
    expect(results.at(-1)?.data?.ingestDataset.datasetId).toMatch(/^[a-z2-7]{16}$/);
  });

  test.each([false, true])('singleConnection %s: refused without the token, or with a wrong one, before anything is ingested', async (single) => {
    const before = (await h.dv.datasets.list()).length;
    for (const headers of [undefined, { authorization: 'Bearer wrong' }]) {
      const err = await run(single, headers).then(
        () => null,
        (e: unknown) => e as { response?: Response },
      );
      expect(err, JSON.stringify(headers)).not.toBeNull();
      expect(err!.response?.status).toBe(401);
    }
    expect((await h.dv.datasets.list()).length).toBe(before);
  });
});
