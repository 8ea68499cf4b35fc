import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RBC } from '../helpers/fixtures.js';
import { codes, readCoco, startHarness, type Harness } from '../graphql/harness.js';

/**
 * Saved views through REST and GraphQL on the demo dataset (and the committed RBC split as a
 * second dataset): CRUD, applied to sample lists and counts, ANDed with a request's filter.
 * Expected sets come from the demo's COCO file.
 */

let h: Harness;
let id: string;
let other: string;
let coco: Awaited<ReturnType<typeof readCoco>>;
let counts: Map<number, number>;

beforeAll(async () => {
  h = await startHarness();
  id = await h.ingest();
  other = await h.ingest(RBC('test').annotations, RBC('test').images, { datasetName: 'rbc-test' });
  coco = await readCoco();
  counts = new Map(coco.images.map((i) => [i.id, 0]));
  for (const im of coco.images) fileName.set(im.id, im.file_name);
  for (const a of coco.annotations) counts.set(a.image_id, counts.get(a.image_id)! + 1);
});
afterAll(() => h?.close());

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.base}${url}`, { method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get('etag'), body: text ? JSON.parse(text) : null };
}
const sorted = (ids: Iterable<number>) => [...ids].sort((a, b) => a - b);
const ids = (body: { items: { id: number }[] }) => sorted(body.items.map((s) => s.id));
const fileName = new Map<number, string>();
const atLeast = (n: number) => coco.images.map((i) => i.id).filter((i) => counts.get(i)! >= n);

describe('saved views over REST', () => {
  let viewId: string;

  it('creates (201), lists, gets; a duplicate name is 409', async () => {
    const created = await call('POST', `/datasets/${id}/views`, { name: ' crowded ', filter: { min_annotations: 4 }, sort: { field: 'FILE_NAME', direction: 'desc' } });
    expect(created.status).toBe(201);
    viewId = created.body.id;
    expect(created.body).toMatchObject({
      dataset_id: id, name: 'crowded', filter: { min_annotations: 4 }, sort: { field: 'file_name', direction: 'desc' },
      samples_path: `/samples?dataset_id=${id}&view=${viewId}`,
    });
    expect((await call('GET', `/datasets/${id}/views`)).body.views.map((v: { id: string }) => v.id)).toEqual([viewId]);
    expect((await call('GET', `/datasets/${id}/views/${viewId}`)).body).toEqual(created.body);
    const dup = await call('POST', `/datasets/${id}/views`, { name: 'crowded' });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/already has a view named "crowded"/) });
  });

  it('applies to GET /samples by id (view=), ANDed with the filter parameters', async () => {
    const applied = await call('GET', `/samples?dataset_id=${id}&view=${viewId}&limit=200`);
    expect(applied.status).toBe(200);
    expect(applied.body.total).toBe(atLeast(4).length);
    expect(ids(applied.body)).toEqual(sorted(atLeast(4)));
    // In the view's order (file name, descending), unless the request names its own.
    const byName = (list: number[]) => [...list].sort((a, b) => (fileName.get(b)! < fileName.get(a)! ? -1 : fileName.get(b)! > fileName.get(a)! ? 1 : 0));
    expect(applied.body.items.map((s: { id: number }) => s.id)).toEqual(byName(atLeast(4)));
    const own = await call('GET', `/samples?dataset_id=${id}&view=${viewId}&sort=file_name&limit=200`);
    expect(own.body.items.map((s: { id: number }) => s.id)).toEqual(byName(atLeast(4)).reverse());
    const narrowed = await call('GET', `/samples?dataset_id=${id}&view=${viewId}&max_annotations=5&limit=200`);
    expect(ids(narrowed.body)).toEqual(sorted(atLeast(4).filter((i) => counts.get(i)! <= 5)));
    // The same field in both: both must hold.
    const both = await call('GET', `/samples?dataset_id=${id}&view=${viewId}&min_annotations=6&limit=200`);
    expect(ids(both.body)).toEqual(sorted(atLeast(6)));
  });

  it('is taken wherever a filter is: objects, aggregations and exports (REST), with the filter parameters ANDed', async () => {
    const want = atLeast(4).filter((i) => counts.get(i)! <= 5);
    const agg = await call('GET', `/datasets/${id}/aggregate?view=${viewId}&max_annotations=5`);
    expect(agg.status).toBe(200);
    expect(agg.body.sample_count).toBe(want.length);
    expect(agg.body.annotation_count).toBe(want.reduce((n, i) => n + counts.get(i)!, 0));
    const objects = await call('GET', `/datasets/${id}/objects?view=${viewId}&max_annotations=5&first=200&total=true`);
    expect(objects.status).toBe(200);
    expect(objects.body.total).toBe(want.reduce((n, i) => n + counts.get(i)!, 0));
    expect(new Set(objects.body.items.map((o: { sample: { id: number } }) => o.sample.id))).toEqual(new Set(want.filter((i) => counts.get(i)! > 0)));
    const exported = await call('GET', `/datasets/${id}/export?view=${viewId}&max_annotations=5`);
    expect(exported.status).toBe(200);
    expect(sorted(exported.body.images.map((im: { id: number }) => im.id))).toEqual(sorted(want));
    expect((await call('GET', `/datasets/${id}/aggregate?view=nosuchviewaaaaaa`)).status).toBe(404);
  });

  it('updates (PATCH): a new filter shows at once, the old ETag no longer matches; rename to a used name is 409', async () => {
    const before = await call('GET', `/samples?dataset_id=${id}&view=${viewId}&limit=200`);
    const patched = await call('PATCH', `/datasets/${id}/views/${viewId}`, { filter: { min_annotations: 2 }, sort: null });
    expect(patched).toMatchObject({ status: 200, body: { name: 'crowded', filter: { min_annotations: 2 }, sort: null } });
    const after = await call('GET', `/samples?dataset_id=${id}&view=${viewId}&limit=200`, undefined, { 'if-none-match': before.etag! });
    expect(after.status).toBe(200);
    expect(ids(after.body)).toEqual(sorted(atLeast(2)));
    await call('POST', `/datasets/${id}/views`, { name: 'all' });
    expect((await call('PATCH', `/datasets/${id}/views/${viewId}`, { name: 'all' })).status).toBe(409);
    expect((await call('PATCH', `/datasets/${id}/views/${viewId}`, { name: 'two or more' })).body.name).toBe('two or more');
  });

  it('refuses bad input with 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ name: '' }, /name must not be empty/],
      [{ name: 'x', filter: { min_annotations: 1.5 } }, /filter\.min_annotations must be an integer/],
      [{ name: 'x', filter: { colour: 'red' } }, /has no field "colour"/],
      [{ name: 'x', filter: { tags: [''] } }, /filter\.tags\[0\] must not be empty/],
      [{ name: 'x', sort: { field: 'FILE_NAME', direction: 'UP' } }, /sort\.direction: "UP" is not a direction; use asc or desc/],
      [{ name: 'x', sort: { direction: 'ASC' } }, /"sort\.field" is required/],
      [{ name: 'x', colour: 1 }, /The request body has no field "colour"; its fields are name, filter, sort/],
    ];
    for (const [body, message] of cases) {
      const r = await call('POST', `/datasets/${id}/views`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('BAD_USER_INPUT');
      expect(r.body.error.message).toMatch(message);
    }
  });

  it('unknown views and views of another dataset are 404; DELETE is 204, then 404', async () => {
    expect((await call('GET', `/samples?dataset_id=${other}&view=${viewId}`)).status).toBe(404);
    expect((await call('GET', `/datasets/${other}/views/${viewId}`)).status).toBe(404);
    expect((await call('GET', `/samples?dataset_id=${id}&view=nosuchview`)).status).toBe(404);
    expect((await call('DELETE', `/datasets/${other}/views/${viewId}`)).status).toBe(404);
    expect((await call('DELETE', `/datasets/${id}/views/${viewId}`)).status).toBe(204);
    expect((await call('GET', `/samples?dataset_id=${id}&view=${viewId}`)).status).toBe(404);
    expect((await call('DELETE', `/datasets/${id}/views/${viewId}`)).status).toBe(404);
  });
});

describe('saved views over GraphQL', () => {
  it('saveView, Dataset.views and view(id), samples(viewId) with a filter, renameView, deleteView', async () => {
    const saved = await h.gql(`mutation($input: SaveViewInput!) { saveView(input: $input) { id name filter sort } }`, {
      input: { datasetId: id, name: 'three+', filter: { minAnnotations: 3 }, sort: { field: 'WIDTH', direction: 'ASC' } },
    });
    expect(saved.errors).toBeUndefined();
    const view = saved.data.saveView;
    expect(view).toMatchObject({ name: 'three+', filter: { minAnnotations: 3 }, sort: { field: 'width', direction: 'asc' } });

    const q = await h.gql(
      `query($id: ID!, $view: ID!) { dataset(id: $id) { views { name } view(id: $view) { id } samples(viewId: $view, filter: { maxAnnotations: 4 }, first: 200) { totalCount edges { node { sampleId } } } } }`,
      { id, view: view.id },
    );
    expect(q.errors).toBeUndefined();
    expect(q.data.dataset.views.map((v: { name: string }) => v.name)).toContain('three+');
    const expected = sorted(atLeast(3).filter((i) => counts.get(i)! <= 4));
    expect(q.data.dataset.samples.totalCount).toBe(expected.length);
    expect(sorted(q.data.dataset.samples.edges.map((e: { node: { sampleId: number } }) => e.node.sampleId))).toEqual(expected);
    // The view's sort (width, ascending; ties in file order) orders the page.
    const fileOrder = new Map(coco.images.map((im, i) => [im.id, i]));
    const width = new Map(coco.images.map((im) => [im.id, im.width]));
    const byWidth = [...expected].sort((a, b) => width.get(a)! - width.get(b)! || fileOrder.get(a)! - fileOrder.get(b)!);
    expect(q.data.dataset.samples.edges.map((e: { node: { sampleId: number } }) => e.node.sampleId)).toEqual(byWidth);
    const agg = await h.gql(`query($id: ID!, $view: ID!) { dataset(id: $id) { aggregate(viewId: $view) { sampleCount } objects(viewId: $view, first: 1) { totalCount } } }`, { id, view: view.id });
    expect(agg.errors).toBeUndefined();
    expect(agg.data.dataset.aggregate.sampleCount).toBe(atLeast(3).length);
    expect(agg.data.dataset.objects.totalCount).toBe(atLeast(3).reduce((n, i) => n + counts.get(i)!, 0));
    // Top-level samples take it too, and tag counts under it.
    const top = await h.gql(`query($id: ID!, $view: ID!) { samples(datasetId: $id, viewId: $view, first: 1) { totalCount } }`, { id, view: view.id });
    expect(top.data.samples.totalCount).toBe(atLeast(3).length);

    const renamed = await h.gql(`mutation($id: ID!) { renameView(id: $id, name: "three or more") { name } }`, { id: view.id });
    expect(renamed.data.renameView.name).toBe('three or more');
    const clash = await h.gql(`mutation($input: SaveViewInput!) { saveView(input: $input) { id } }`, { input: { datasetId: id, name: 'three or more' } });
    expect(codes(clash)).toEqual(['CONFLICT']);
    const bad = await h.gql(`mutation($input: SaveViewInput!) { saveView(input: $input) { id } }`, { input: { datasetId: id, name: 'x', filter: { minAnnotations: -2 } } });
    expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
    expect(bad.errors![0]!.message).toMatch(/input\.filter\.minAnnotations must be an integer/);

    const foreign = await h.gql(`query($id: ID!, $view: ID!) { samples(datasetId: $id, viewId: $view, first: 1) { totalCount } }`, { id: other, view: view.id });
    expect(codes(foreign)).toEqual(['NOT_FOUND']);
    const deleted = await h.gql(`mutation($id: ID!) { deleteView(id: $id) }`, { id: view.id });
    expect(deleted.data.deleteView).toBe(view.id);
    expect(codes(await h.gql(`mutation($id: ID!) { deleteView(id: $id) }`, { id: view.id }))).toEqual(['NOT_FOUND']);
    expect(codes(await h.gql(`query($id: ID!, $view: ID!) { dataset(id: $id) { view(id: $view) { id } } }`, { id, view: view.id }))).toEqual(['NOT_FOUND']);
  });

  it('a view names the samples to tag', async () => {
    const saved = await h.gql(`mutation($input: SaveViewInput!) { saveView(input: $input) { id } }`, { input: { datasetId: id, name: 'five+', filter: { minAnnotations: 5 } } });
    const r = await h.gql(`mutation($input: TagSamplesInput!) { tagSamples(input: $input) }`, { input: { datasetId: id, tags: ['dense'], viewId: saved.data.saveView.id } });
    expect(r.data.tagSamples).toBe(atLeast(5).length);
  });
});

describe('deleting', () => {
  it('a dataset removes its tags and views; a prediction run removes the tags of its predictions', async () => {
    const rows = async (table: string, dataset: string) => Number((await h.dv.db.query(`SELECT count(*) AS n FROM ${table} WHERE dataset_id = $1`, [dataset]))[0]!.n);
    // A run on the RBC split: its first ten ground-truth boxes as predictions.
    const gt = await readCoco(RBC('test').annotations);
    const results = path.join(h.tmp, 'rbc-preds.json');
    await fs.writeFile(results, JSON.stringify(gt.annotations.slice(0, 10).map((a) => ({ image_id: a.image_id, category_id: a.category_id, bbox: a.bbox, score: 0.9 }))));
    for await (const e of h.dv.predictions.import({ datasetId: other, resultsPath: results, name: 'copy' })) if (e.stage === 'error') throw new Error(e.message);
    expect((await h.dv.tags.tagAnnotations(other, { filter: {}, predictions: ['copy'] }, ['p'])).changed).toBe(10);
    expect((await h.dv.tags.tagAnnotations(other, { filter: {} }, ['g'])).changed).toBe(gt.annotations.length);
    await h.dv.tags.tagSamples(other, { filter: {} }, ['s']);
    await h.dv.views.create(other, { name: 'v' });
    expect(await rows('annotation_tags', other)).toBe(10 + gt.annotations.length);

    await h.dv.predictions.delete(other, 'copy');
    expect(await h.dv.db.query(`SELECT tag, count(*)::INTEGER AS n FROM annotation_tags WHERE dataset_id = $1 GROUP BY tag`, [other])).toEqual([{ tag: 'g', n: gt.annotations.length }]);

    await h.dv.datasets.delete(other);
    for (const table of ['sample_tags', 'annotation_tags', 'views']) expect(await rows(table, other), table).toBe(0);
    expect(await rows('sample_tags', id)).toBeGreaterThan(0);
  });
});
