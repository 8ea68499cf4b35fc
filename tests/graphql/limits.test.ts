import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { codes, DEMO_IMAGES, DEMO_JSON, dist, readCoco, startHarness, type Harness } from './harness.js';

/** Abuse guards, HTTP rules and the error mask. */

const { LIMITS } = dist<typeof import('../../dist/schema/guards.js')>('schema/guards.js');
const { maskError } = dist<typeof import('../../dist/schema/errors.js')>('schema/errors.js');
const { DataVisorError } = dist<typeof import('../../dist/services/errors.js')>('services/errors.js');

let h: Harness;
let id: string;
const logLines: string[] = [];

beforeAll(async () => {
  const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
  h = await startHarness({ log: pino({ level: 'info' }, sink) });
  id = await h.ingest();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const SAMPLE_PAGE = `id fileName thumbnailUrl annotations { id categoryName bbox { x y w h } area isCrowd }`;

describe('depth and cost', () => {
  test('a full page of 200 samples with annotations, boxes and their dataset is accepted', async () => {
    const r = await h.gql(`query($id: ID!) { samples(datasetId: $id, first: 200) { totalCount edges { cursor node { ${SAMPLE_PAGE} dataset { name } } } } }`, { id });
    expect(r.errors).toBeUndefined();
    expect(r.data.samples.edges).toHaveLength(128);
    const nested = await h.gql(`{ datasets(first: 3) { edges { node { samples(first: 200) { edges { node { ${SAMPLE_PAGE} } } } } } } }`);
    expect(nested.errors).toBeUndefined();
  });

  test('samples under datasets under samples is refused before anything runs', async () => {
    const before = h.dv.db.queryCount;
    const r = await h.gql(`{ datasets { edges { node { samples(first: 200) { edges { node {
      annotations { bbox { x } }
      dataset { samples(first: 200) { edges { node { annotations { id } } } } }
    } } } } } } }`);
    expect(r.data ?? null).toBeNull();
    expect(codes(r)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
    const messages = r.errors!.map((e) => e.message).join('\n');
    expect(messages).toMatch(new RegExp(`Query depth limit of ${LIMITS.maxDepth} exceeded, found \\d+`));
    expect(messages).toMatch(new RegExp(`Query Cost limit of ${LIMITS.maxCost} exceeded`));
    expect(h.dv.db.queryCount).toBe(before);
  });

  test('200 datasets × 200 samples × annotations is refused by cost, with literals or with variables', async () => {
    const literal = await h.gql(`{ datasets(first: 200) { edges { node { samples(first: 200) { edges { node { ${SAMPLE_PAGE} } } } } } } }`);
    expect(codes(literal)).toEqual(['BAD_USER_INPUT']);
    expect(literal.errors![0]!.message).toMatch(/Query Cost limit of \d+ exceeded, found \d+/);

    const Q = `query($a: Int, $b: Int = 200) { datasets(first: $a) { edges { node { samples(first: $b) { edges { node { ${SAMPLE_PAGE} } } } } } } }`;
    const before = h.dv.db.queryCount;
    const withVariables = await h.gql(Q, { a: 200 });
    expect(codes(withVariables)).toEqual(['BAD_USER_INPUT']);
    expect(withVariables.errors![0]!.message).toMatch(/Query Cost limit of \d+ exceeded/);
    expect(h.dv.db.queryCount).toBe(before);
    // The same operation with small pages passes.
    expect((await h.gql(Q, { a: 2, b: 5 })).errors).toBeUndefined();
  });

  test('a subscription selecting pages by variable is costed too, before the ingest starts', async () => {
    const page = `dataset { samples(first: $n) { edges { node { ${SAMPLE_PAGE} } } } }`;
    const aliases = Array.from({ length: 12 }, (_, i) => `d${i}: ${page}`).join(' ');
    const query = `subscription($input: IngestInput!, $n: Int) { ingestDataset(input: $input) { stage ${aliases} } }`;
    const before = (await h.dv.datasets.list()).length;
    const res = await fetch(`${h.base}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables: { n: 200, input: { annotationPath: DEMO_JSON, imageDir: DEMO_IMAGES } } }),
    });
    const text = await res.text();
    expect(text).toMatch(/Query Cost limit of \d+ exceeded/);
    expect(text).toContain('BAD_USER_INPUT');
    expect(text).not.toContain('"stage"');
    expect((await h.dv.datasets.list()).length).toBe(before);
  });

  test('a connection without first or last costs its default page of 50', async () => {
    const bare = await h.gql(`{ datasets { edges { node { samples(first: 200) { edges { node { ${SAMPLE_PAGE} } } } } } } }`);
    expect(codes(bare)).toEqual(['BAD_USER_INPUT']);
    expect(bare.errors![0]!.message).toMatch(/Query Cost limit of \d+ exceeded/);
    const nulls = await h.gql(`query($n: Int) { datasets(first: $n) { edges { node { samples(first: null) { edges { node { ${SAMPLE_PAGE} } } } } } } }`);
    expect(codes(nulls)).toEqual(['BAD_USER_INPUT']);
    expect((await h.gql(`{ datasets { edges { node { name samples { totalCount } } } } }`)).errors).toBeUndefined();
  });

  test('aliases and tokens', async () => {
    const aliases = Array.from({ length: LIMITS.maxAliases + 1 }, (_, i) => `a${i}: datasets { totalCount }`).join(' ');
    const r = await h.gql(`{ ${aliases} }`);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toMatch(/Aliases limit of 15 exceeded/);

    const tokens = await h.gql(`{ ${'__typename '.repeat(LIMITS.maxTokens + 1)} }`);
    expect(tokens.errors).toHaveLength(1);
    expect(tokens.errors![0]!.message).toMatch(/Token limit of 2000 exceeded/);
    expect(tokens.status).toBe(400);
  });

  test('introspection stays on and is not limited by depth', async () => {
    const r = await h.gql(`{ __schema { queryType { name } types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.__schema.queryType.name).toBe('Query');
  });
});

describe('field suggestions', () => {
  test('are shown in development and hidden in production', async () => {
    const dev = await h.gql('{ datasetz { totalCount } }');
    expect(dev.errors![0]!.message).toMatch(/Did you mean .*"datasets"/);
    const saved = process.env.NODE_ENV;
    const prod = await startHarness({ beforeHandler: () => (process.env.NODE_ENV = 'production') });
    process.env.NODE_ENV = saved;
    try {
      const r = await prod.gql('{ datasetz { totalCount } }');
      expect(r.errors![0]!.message).toMatch(/Cannot query field "datasetz"/);
      expect(r.errors![0]!.message).not.toMatch(/Did you mean/);
    } finally {
      await prod.close();
    }
  });
});

describe('errors', () => {
  test('bad ids and unknown objects', async () => {
    const unknown = 'zzzzzzzzzzzzzzzz';
    const dataset = await h.gql(`query($id: ID!) { dataset(id: $id) { name } }`, { id: unknown });
    expect(dataset.data).toEqual({ dataset: null });
    expect(codes(dataset)).toEqual(['NOT_FOUND']);
    expect(dataset.status).toBe(200);

    const samples = await h.gql(`query($id: ID!) { samples(datasetId: $id, first: 1) { totalCount } }`, { id: unknown });
    expect(codes(samples)).toEqual(['NOT_FOUND']);
    expect(samples.status).toBe(404);

    const ids = await h.gql(`query($id: ID!) { dataset(id: $id) { id samples(first: 1) { edges { node { id } } } } }`, { id });
    const datasetGid: string = ids.data.dataset.id;
    const sampleGid: string = ids.data.dataset.samples.edges[0].node.id;
    const first = (await readCoco()).images[0]!;
    expect(Buffer.from(datasetGid, 'base64').toString()).toBe(`Dataset:${id}`);
    expect(Buffer.from(sampleGid, 'base64').toString()).toBe(`Sample:${id}:${first.id}`);

    const byNode = await h.gql(`query($a: ID!, $b: ID!) { a: node(id: $a) { id ... on Dataset { imageCount } } b: node(id: $b) { id ... on Sample { fileName } } }`, { a: datasetGid, b: sampleGid });
    expect(byNode.data).toEqual({ a: { id: datasetGid, imageCount: 128 }, b: { id: sampleGid, fileName: first.file_name } });
    expect((await h.gql(`query($id: ID!) { dataset(id: $id) { imageCount } }`, { id: datasetGid })).data.dataset.imageCount).toBe(128);
    expect((await h.gql(`query($id: ID!) { samples(datasetId: $id, first: 1) { totalCount } }`, { id: datasetGid })).data.samples.totalCount).toBe(128);

    const gid = (text: string) => Buffer.from(text).toString('base64');
    const cases: [string, string][] = [
      [gid(`Dataset:${unknown}`), 'NOT_FOUND'],
      [gid(`Sample:${id}:123456789`), 'NOT_FOUND'],
      [gid(`Sample:${unknown}:9`), 'NOT_FOUND'],
      [gid(`Sample:${id}:nine`), 'BAD_USER_INPUT'],
      [gid(`Category:${id}:1`), 'BAD_USER_INPUT'],
      [gid('no separator'), 'BAD_USER_INPUT'],
      ['not base64!', 'BAD_USER_INPUT'],
      [id, 'BAD_USER_INPUT'],
    ];
    for (const [nodeId, code] of cases) {
      const r = await h.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: nodeId });
      expect(r.data, nodeId).toEqual({ node: null });
      expect(codes(r), nodeId).toEqual([code]);
    }
    const wrongType = await h.gql(`query($id: ID!) { dataset(id: $id) { name } }`, { id: sampleGid });
    expect(codes(wrongType)).toEqual(['BAD_USER_INPUT']);
    expect(wrongType.errors![0]!.message).toMatch(/is the id of a Sample, not of a Dataset/);
  });

  test('deleteDataset: the id it was given, then NOT_FOUND', async () => {
    const doomed = await h.ingest(undefined, undefined, { datasetName: 'doomed' });
    // Read first, so the dataset and its categories sit in the services' caches.
    const READ = `query($id: ID!) { dataset(id: $id) { id categories { name } } samples(datasetId: $id, first: 5) { edges { node { annotations { categoryName } } } } }`;
    const before = await h.gql(READ, { id: doomed });
    expect(before.data.dataset.categories.length).toBeGreaterThan(0);
    const M = `mutation($id: ID!) { deleteDataset(id: $id) }`;
    const r = await h.gql(M, { id: doomed });
    expect(r.data).toEqual({ deleteDataset: doomed });
    expect((await h.gql(`query($id: ID!) { dataset(id: $id) { id } }`, { id: doomed })).data.dataset).toBeNull();
    expect(codes(await h.gql(`query($id: ID!) { samples(datasetId: $id, first: 5) { edges { node { id } } } }`, { id: doomed }))).toEqual(['NOT_FOUND']);
    expect(await h.dv.datasets.categories(doomed)).toEqual([]);
    const again = await h.gql(M, { id: doomed });
    expect(codes(again)).toEqual(['NOT_FOUND']);
    expect(again.status).toBe(404);
    expect(codes(await h.gql(M, { id: 'NOT AN ID' }))).toEqual(['BAD_USER_INPUT']);
  });

  test('an unexpected error is masked for the client and logged once', async () => {
    const count = h.dv.datasets.count;
    h.dv.datasets.count = async () => {
      throw new Error('disk on fire under /very/secret/path');
    };
    logLines.length = 0;
    try {
      const r = await h.gql('{ datasets { totalCount } }');
      expect(r.status).toBe(500);
      expect(r.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL' } })]);
      expect(JSON.stringify(r)).not.toMatch(/secret|fire/);
    } finally {
      h.dv.datasets.count = count;
    }
    const logged = logLines.filter((l) => l.includes('disk on fire'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: 50, msg: 'graphql: unexpected error' });
    // Expected errors are answers, not incidents.
    logLines.length = 0;
    await h.gql(`{ dataset(id: "zzzzzzzzzzzzzzzz") { id } }`);
    expect(logLines.filter((l) => l.includes('"level":50'))).toEqual([]);
  });

  test('service codes as GraphQL codes', () => {
    const ext = (code: string) => (maskError(new DataVisorError(code as never, 'm')) as { extensions: object }).extensions;
    expect(ext('NOT_FOUND')).toEqual({ code: 'NOT_FOUND', http: { status: 404 } });
    expect(ext('FORBIDDEN')).toEqual({ code: 'FORBIDDEN', http: { status: 403 } });
    expect(ext('BAD_USER_INPUT')).toEqual({ code: 'BAD_USER_INPUT', http: { status: 400 } });
    expect(ext('FILE_NOT_FOUND')).toEqual({ code: 'NOT_FOUND', reason: 'FILE_NOT_FOUND', http: { status: 404 } });
    expect(ext('INVALID_JSON')).toEqual({ code: 'INGEST_FAILED', reason: 'INVALID_JSON', http: { status: 422 } });
    expect(ext('INVALID_COCO')).toEqual({ code: 'INGEST_FAILED', reason: 'INVALID_COCO', http: { status: 422 } });
    expect(ext('INGEST_FAILED')).toEqual({ code: 'INGEST_FAILED', http: { status: 500 } });
    expect(maskError(new TypeError('x is undefined')).message).toBe('Unexpected error.');
  });
});

describe('HTTP', () => {
  test('operations come as JSON: a cross-site form post is refused', async () => {
    const body = new URLSearchParams({ query: `mutation { deleteDataset(id: "${id}") }` });
    const res = await fetch(`${h.base}/graphql`, { method: 'POST', body });
    expect(res.status).toBe(415);
    expect((await res.json()).errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await h.dv.datasets.get(id)).id).toBe(id);
  });

  test('queries by GET work; mutations by GET do not', async () => {
    const q = new URL(`${h.base}/graphql`);
    q.searchParams.set('query', '{ datasets { totalCount } }');
    const ok = await fetch(q, { headers: { accept: 'application/json' } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).data.datasets.totalCount).toBeGreaterThan(0);
    q.searchParams.set('query', `mutation { deleteDataset(id: "${id}") }`);
    expect((await fetch(q, { headers: { accept: 'application/json' } })).status).toBe(405);
  });
});
