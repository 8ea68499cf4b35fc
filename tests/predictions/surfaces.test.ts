import fs from 'node:fs/promises';
import path from 'node:path';
import { createClient, type ExecutionResult } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startHarness, type Harness } from '../graphql/harness.js';
import { parseSse } from '../rest/helpers.js';

/** Prediction runs over REST (SSE) and GraphQL (a graphql-sse subscription), on one real server. */

const gt = {
  images: [1, 2, 3].map((id) => ({ id, file_name: `${id}.jpg`, width: 50, height: 50 })),
  annotations: [1, 2, 3].map((id) => ({ id, image_id: id, category_id: 1, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0 })),
  categories: [{ id: 1, name: 'thing' }],
};
const results = (n: number) => Array.from({ length: n }, (_, i) => ({ image_id: 1 + (i % 3), category_id: 1, bbox: [i, i, 5, 5], score: 1 - i / (n + 1) }));

let h: Harness;
let id: string;
let dir: string;

beforeAll(async () => {
  h = await startHarness();
  dir = path.join(h.tmp, 'pred');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'gt.json'), JSON.stringify(gt));
  await fs.writeFile(path.join(dir, 'ten.json'), JSON.stringify(results(10)));
  await fs.writeFile(path.join(dir, 'four.json'), JSON.stringify(results(4)));
  await fs.writeFile(path.join(dir, 'unknown-image.json'), JSON.stringify([{ image_id: 99, category_id: 1, score: 0.5 }]));
  id = await h.ingest(path.join(dir, 'gt.json'), dir, { datasetName: 'tiny' });
});
afterAll(() => h?.close());

const post = (body: unknown) =>
  fetch(`${h.base}/datasets/${id}/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('REST', () => {
  it('POST streams the import as server-sent events; GET lists the run; a second import of the name is a CONFLICT event', async () => {
    const res = await post({ results_path: path.join(dir, 'ten.json'), name: 'rest-run' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSse(await res.text());
    expect(events.at(-1)).toMatchObject({ stage: 'complete', prediction_count: 10, dataset_id: id });
    const list = (await (await fetch(`${h.base}/datasets/${id}/predictions`)).json()) as { predictions: Record<string, unknown>[] };
    expect(list.predictions).toEqual([expect.objectContaining({ name: 'rest-run', prediction_count: 10, source_path: path.join(dir, 'ten.json') })]);
    const again = parseSse(await (await post({ results_path: path.join(dir, 'four.json'), name: 'rest-run' })).text());
    expect(again.at(-1)).toMatchObject({ stage: 'error', code: 'CONFLICT' });
    const replaced = parseSse(await (await post({ results_path: path.join(dir, 'four.json'), name: 'rest-run', replace: true })).text());
    expect(replaced.at(-1)).toMatchObject({ stage: 'complete', prediction_count: 4 });
  });

  it('answers 400 before any stream for a bad body, and an error event for an unknown image id', async () => {
    const bad = await post({ name: 'x' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/"results_path" is required/);
    const events = parseSse(await (await post({ results_path: path.join(dir, 'unknown-image.json'), name: 'x' })).text());
    expect(events.at(-1)).toMatchObject({ stage: 'error', code: 'INVALID_RESULTS' });
    expect(events.at(-1)!.message).toMatch(/image_id 99 at \[0\]/);
  });

  it('DELETE removes a run (204), then 404; an unknown dataset is 404', async () => {
    expect((await fetch(`${h.base}/datasets/${id}/predictions/rest-run`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${h.base}/datasets/${id}/predictions/rest-run`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${h.base}/datasets/aaaaaaaaaaaaaaaa/predictions`)).status).toBe(404);
  });
});

describe('GraphQL', () => {
  const SUB = `subscription($input: PredictionImportInput!) { importPredictions(input: $input) { stage current predictionCount datasetId } }`;
  type Progress = { stage: string; predictionCount: number | null };

  async function subscribe(input: Record<string, unknown>) {
    const client = createClient({ url: `${h.base}/graphql/stream`, fetchFn: fetch, retryAttempts: 0 });
    const out: ExecutionResult<{ importPredictions: Progress }>[] = [];
    try {
      for await (const r of client.iterate<{ importPredictions: Progress }>({ query: SUB, variables: { input } })) out.push(r);
    } finally {
      client.dispose();
    }
    return out;
  }

  it('importPredictions streams to COMPLETE; Dataset.predictionRuns lists it; deletePredictions removes it', async () => {
    const out = await subscribe({ datasetId: id, resultsPath: path.join(dir, 'ten.json'), name: 'gql-run' });
    expect(out.at(-1)!.data!.importPredictions).toMatchObject({ stage: 'COMPLETE', predictionCount: 10 });
    const listed = await h.gql(`query($id: ID!) { dataset(id: $id) { revision predictionRuns { name predictionCount } } }`, { id });
    expect(listed.data.dataset.predictionRuns).toContainEqual({ name: 'gql-run', predictionCount: 10 });
    const del = await h.gql(`mutation($id: ID!) { deletePredictions(datasetId: $id, name: "gql-run") }`, { id });
    expect(del.data).toEqual({ deletePredictions: 'gql-run' });
    const gone = await h.gql(`mutation($id: ID!) { deletePredictions(datasetId: $id, name: "gql-run") }`, { id });
    expect(codes(gone)).toEqual(['NOT_FOUND']);
  });

  it('a failed import ends the subscription with an error carrying its code', async () => {
    const out = await subscribe({ datasetId: id, resultsPath: path.join(dir, 'unknown-image.json'), name: 'gql-bad' });
    expect(out.at(-1)!.errors![0]!.extensions).toMatchObject({ code: 'INVALID_RESULTS' });
  });
});
