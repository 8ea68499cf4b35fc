import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, readCoco, startHarness, type Harness } from '../graphql/harness.js';

/**
 * Tags on samples and annotations through REST and GraphQL, on the demo dataset. Every expected set
 * is computed here from the demo's COCO file, never from the server's answers.
 */

let h: Harness;
let id: string;
let coco: Awaited<ReturnType<typeof readCoco>>;
/** Image ids in file order, and per image its ground-truth annotations' category names. */
let imageIds: number[];
let namesOf: Map<number, string[]>;
let categoryOf: Map<number, string>;

beforeAll(async () => {
  h = await startHarness();
  id = await h.ingest();
  coco = await readCoco();
  imageIds = coco.images.map((i) => i.id);
  categoryOf = new Map(coco.categories.map((c) => [c.id, c.name]));
  namesOf = new Map(imageIds.map((i) => [i, []]));
  for (const a of coco.annotations) namesOf.get(a.image_id)!.push(categoryOf.get(a.category_id)!);
});
afterAll(() => h?.close());

const sorted = (ids: Iterable<number>) => [...ids].sort((a, b) => a - b);
const withAtLeast = (n: number) => imageIds.filter((i) => namesOf.get(i)!.length >= n);
const withCategory = (name: string) => imageIds.filter((i) => namesOf.get(i)!.includes(name));

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${h.base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get('etag'), body: text ? JSON.parse(text) : null };
}
const tag = (body: unknown) => call('POST', `/datasets/${id}/tags`, body);
const untag = (body: unknown) => call('POST', `/datasets/${id}/tags/remove`, body);
/** Image ids of every sample matching the query (the demo has 128, one page of 200). */
const restIds = async (query: string) => {
  const r = await call('GET', `/samples?dataset_id=${id}&limit=200&${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return sorted((r.body.items as { id: number }[]).map((s) => s.id));
};
const revision = async () => (await h.dv.datasets.get(id)).revision;

describe('tagging samples', () => {
  it('by a filter: the samples it matches, counted once however often they are tagged', async () => {
    const busy = withAtLeast(3);
    expect(busy.length).toBeGreaterThan(5);
    const before = await revision();
    const first = await tag({ tags: ['busy'], filter: { min_annotations: 3 } });
    expect(first).toMatchObject({ status: 200, body: { changed: busy.length, revision: before + 1 } });
    expect(await restIds('tags=busy')).toEqual(sorted(busy));
    // Again: nothing changes, and the revision stays (caches and cursors stay valid).
    expect(await tag({ tags: ['busy'], filter: { min_annotations: 3 } })).toMatchObject({ status: 200, body: { changed: 0, revision: before + 1 } });
    expect(await revision()).toBe(before + 1);
  });

  it('by ids over GraphQL; Sample.tags lists them; any, all and none filter as sets', async () => {
    const picked = imageIds.filter((_, i) => i % 4 === 0);
    const busy = new Set(withAtLeast(3));
    const r = await h.gql(`mutation($input: TagSamplesInput!) { tagSamples(input: $input) }`, { input: { datasetId: id, tags: ['picked', ' review '], sampleIds: picked } });
    expect(r.errors).toBeUndefined();
    expect(r.data.tagSamples).toBe(picked.length);

    const q = await h.gql(`query($id: ID!, $f: SampleFilter) { dataset(id: $id) { samples(filter: $f, first: 200) { totalCount edges { node { sampleId tags } } } } }`, { id, f: { tags: ['picked'] } });
    const nodes = q.data.dataset.samples.edges.map((e: { node: { sampleId: number; tags: string[] } }) => e.node);
    expect(sorted(nodes.map((n: { sampleId: number }) => n.sampleId))).toEqual(sorted(picked));
    // Trimmed, in name order.
    for (const n of nodes) expect(n.tags).toEqual(busy.has(n.sampleId) ? ['busy', 'picked', 'review'] : ['picked', 'review']);

    const count = async (f: object) => {
      const r = await h.gql(`query($id: ID!, $f: SampleFilter) { dataset(id: $id) { samples(filter: $f, first: 1) { totalCount } } }`, { id, f });
      expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
      return r.data.dataset.samples.totalCount;
    };
    const pickedSet = new Set(picked);
    expect(await count({ tags: ['picked', 'busy'] })).toBe(imageIds.filter((i) => pickedSet.has(i) || busy.has(i)).length);
    expect(await count({ tagsAll: ['picked', 'busy'] })).toBe(imageIds.filter((i) => pickedSet.has(i) && busy.has(i)).length);
    expect(await count({ tagsNone: ['picked', 'busy'] })).toBe(imageIds.filter((i) => !pickedSet.has(i) && !busy.has(i)).length);
    expect(await count({ tags: [] })).toBe(0);
    // REST spells them the same way.
    expect(await restIds('tags_all=picked&tags_all=busy')).toEqual(sorted(imageIds.filter((i) => pickedSet.has(i) && busy.has(i))));
    expect(await restIds('tags_none=picked&tags_none=busy')).toEqual(sorted(imageIds.filter((i) => !pickedSet.has(i) && !busy.has(i))));
  });

  it('untags by a filter: the samples that lose a tag', async () => {
    const category = coco.categories[0]!.name;
    const busyOfCategory = withAtLeast(3).filter((i) => namesOf.get(i)!.includes(category));
    const r = await untag({ tags: ['busy', 'never-used'], filter: { category } });
    expect(r).toMatchObject({ status: 200, body: { changed: busyOfCategory.length } });
    const removed = new Set(busyOfCategory);
    expect(await restIds('tags=busy')).toEqual(sorted(withAtLeast(3).filter((i) => !removed.has(i))));
    expect((await untag({ tags: ['busy'], filter: { category } })).body.changed).toBe(0);
  });

  it('counts per tag, overall and under a filter, over REST and GraphQL', async () => {
    const picked = new Set(imageIds.filter((_, i) => i % 4 === 0));
    const category = coco.categories[0]!.name;
    const busy = new Set(withAtLeast(3).filter((i) => !namesOf.get(i)!.includes(category)));
    const expected = [
      { name: 'busy', sample_count: busy.size, annotation_count: 0 },
      { name: 'picked', sample_count: picked.size, annotation_count: 0 },
      { name: 'review', sample_count: picked.size, annotation_count: 0 },
    ];
    expect((await call('GET', `/datasets/${id}/tags`)).body).toEqual({ tags: expected });
    const split = (i: number) => namesOf.get(i)!.length >= 1;
    const under = await call('GET', `/datasets/${id}/tags?min_annotations=1`);
    expect(under.body.tags).toEqual([
      { name: 'busy', sample_count: [...busy].filter(split).length, annotation_count: 0 },
      { name: 'picked', sample_count: [...picked].filter(split).length, annotation_count: 0 },
      { name: 'review', sample_count: [...picked].filter(split).length, annotation_count: 0 },
    ]);
    const g = await h.gql(`query($id: ID!) { dataset(id: $id) { tags { name sampleCount annotationCount } } }`, { id });
    expect(g.data.dataset.tags).toEqual(expected.map((t) => ({ name: t.name, sampleCount: t.sample_count, annotationCount: t.annotation_count })));
  });

  it('a change makes cached pages, ETags and cursors of the old revision invalid', async () => {
    const page = await call('GET', `/samples?dataset_id=${id}&tags=fresh`);
    expect(page.body.total).toBe(0);
    const g = await h.gql(`query($id: ID!) { dataset(id: $id) { samples(first: 2) { pageInfo { endCursor } } } }`, { id });
    const cursor = g.data.dataset.samples.pageInfo.endCursor;
    expect((await tag({ tags: ['fresh'], sample_ids: [imageIds[0]] })).body.changed).toBe(1);
    const res = await fetch(`${h.base}/samples?dataset_id=${id}&tags=fresh`, { headers: { 'if-none-match': page.etag! } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { total: number }).total).toBe(1);
    const stale = await h.gql(`query($id: ID!, $after: String) { dataset(id: $id) { samples(first: 2, after: $after) { totalCount } } }`, { id, after: cursor });
    expect(codes(stale)).toEqual(['BAD_USER_INPUT']);
    expect(stale.errors![0]!.message).toMatch(/has changed since the cursor was made/);
  });
});

describe('tagging annotations', () => {
  it('by a filter and categories; Annotation.tags; annotationTags filters samples; counts', async () => {
    const category = coco.categories[1]!.name;
    const expectedCount = coco.annotations.filter((a) => categoryOf.get(a.category_id) === category).length;
    const r = await call('POST', `/datasets/${id}/annotation-tags`, { tags: ['check'], filter: {}, categories: [category] });
    expect(r).toMatchObject({ status: 200, body: { changed: expectedCount } });
    expect(await restIds('annotation_tags=check')).toEqual(sorted(withCategory(category)));
    const g = await h.gql(
      `query($id: ID!) { dataset(id: $id) { tags { name annotationCount } samples(filter: { annotationTags: ["check"] }, first: 200) { edges { node { annotations { id categoryName tags } } } } } }`,
      { id },
    );
    expect(g.data.dataset.tags.find((t: { name: string }) => t.name === 'check')).toEqual({ name: 'check', annotationCount: expectedCount });
    const annotations = g.data.dataset.samples.edges.flatMap((e: { node: { annotations: object[] } }) => e.node.annotations);
    for (const a of annotations) expect(a.tags).toEqual(a.categoryName === category ? ['check'] : []);

    // By id: one annotation of another category, then removed again.
    const other = annotations.find((a: { categoryName: string }) => a.categoryName !== category);
    const one = await h.gql(`mutation($input: TagAnnotationsInput!) { tagAnnotations(input: $input) }`, { input: { datasetId: id, tags: ['check'], annotationIds: [other.id] } });
    expect(one.data.tagAnnotations).toBe(1);
    expect(await restIds('annotation_tags=check')).toEqual(sorted(new Set([...withCategory(category), sampleOfAnnotation(other.id)])));
    const off = await h.gql(`mutation($input: TagAnnotationsInput!) { untagAnnotations(input: $input) }`, { input: { datasetId: id, tags: ['check'], annotationIds: [other.id] } });
    expect(off.data.untagAnnotations).toBe(1);
  });
});

describe('batching', () => {
  it('Sample.tags and Annotation.tags cost one query each per page, whatever its size', async () => {
    const page = async (first: number) => {
      const q = `query($id: ID!, $first: Int!) { dataset(id: $id) { samples(first: $first) { edges { node { tags annotations { tags } } } } } }`;
      await h.gql(q, { id, first }); // the dataset and its categories are cached after this
      const before = h.dv.db.queryCount;
      const r = await h.gql(q, { id, first });
      expect(r.errors).toBeUndefined();
      return h.dv.db.queryCount - before;
    };
    expect(await page(50)).toBe(await page(5));
  });
});

describe('tagging annotations over REST by position', () => {
  it('takes the positions GET /samples/{id}/annotations lists', async () => {
    const sample = imageIds.find((i) => namesOf.get(i)!.length >= 2)!;
    const listed = await call('GET', `/samples/${sample}/annotations?dataset_id=${id}`);
    const positions = (listed.body as { position: number }[]).slice(0, 2).map((a) => a.position);
    // Independently: positions are the annotations' places in the file.
    const inFile = coco.annotations.flatMap((a, i) => (a.image_id === sample ? [i] : [])).slice(0, 2);
    expect(positions).toEqual(inFile);
    expect((await call('POST', `/datasets/${id}/annotation-tags`, { tags: ['pair'], positions })).body.changed).toBe(2);
    expect((await call('GET', `/datasets/${id}/tags`)).body.tags.find((t: { name: string }) => t.name === 'pair')).toEqual({ name: 'pair', sample_count: 0, annotation_count: 2 });
    expect(await restIds('annotation_tags=pair')).toEqual([sample]);
    expect((await call('POST', `/datasets/${id}/annotation-tags/remove`, { tags: ['pair'], positions })).body.changed).toBe(2);
  });
});

/** The image of an annotation id `<dataset>:<position>`: the position-th annotation of the file. */
function sampleOfAnnotation(annotationId: string): number {
  return coco.annotations[Number(annotationId.split(':')[1])]!.image_id;
}

describe('bad input', () => {
  it('is refused with 400 / BAD_USER_INPUT naming the problem, and changes nothing', async () => {
    const before = await revision();
    const cases: [unknown, RegExp][] = [
      [{ tags: [''], filter: {} }, /tags\[0\] must not be empty/],
      [{ tags: ['   '], filter: {} }, /tags\[0\] must not be empty or only spaces/],
      [{ tags: ['x'.repeat(101)], filter: {} }, /tags\[0\] must be at most 100 characters/],
      [{ tags: ['a\u0007b'], filter: {} }, /tags\[0\] must be printable text.*U\+0007/],
      [{ tags: [], filter: {} }, /tags must name at least one tag/],
      [{ tags: ['a'] }, /name what to tag: sample_ids, or filter \(\{\} for everything\) and\/or view/],
      [{ tags: ['a'], sample_ids: [imageIds[0]], filter: {} }, /give either sample_ids or filter, not both/],
      [{ tags: ['a'], filter: { min_annotations: -1 } }, /filter\.min_annotations must be an integer between 0/],
      [{ tags: ['a'], filter: { min_annotationz: 1 } }, /has no field "min_annotationz"/],
      [{ tags: 'a', filter: {} }, /"tags" must be a list of tags/],
    ];
    for (const [body, message] of cases) {
      const r = await tag(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('BAD_USER_INPUT');
      expect(r.body.error.message).toMatch(message);
    }
    const g = await h.gql(`mutation($input: TagSamplesInput!) { tagSamples(input: $input) }`, { input: { datasetId: id, tags: [' '], filter: {} } });
    expect(codes(g)).toEqual(['BAD_USER_INPUT']);
    expect(g.errors![0]!.message).toMatch(/input\.tags\[0\] must not be empty/);
    const bothG = await h.gql(`mutation($input: TagAnnotationsInput!) { tagAnnotations(input: $input) }`, { input: { datasetId: id, tags: ['a'], annotationIds: [`${id}:0`], categories: ['x'] } });
    expect(bothG.errors![0]!.message).toMatch(/give either input\.annotationIds or input\.categories, not both/);
    const foreign = await h.gql(`mutation($input: TagAnnotationsInput!) { tagAnnotations(input: $input) }`, { input: { datasetId: id, tags: ['a'], annotationIds: ['aaaaaaaaaaaaaaaa:0'] } });
    expect(codes(foreign)).toEqual(['BAD_USER_INPUT']);
    expect(await revision()).toBe(before);
  });

  it('unknown ids and datasets are 404 / NOT_FOUND, with nothing changed', async () => {
    const before = await revision();
    const missing = Math.max(...imageIds) + 1000;
    const r = await tag({ tags: ['a'], sample_ids: [imageIds[1], missing] });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(new RegExp(`sample_ids: 1 of the ids name no sample of dataset ${id} \\(${missing}\\); nothing was changed`));
    expect(await restIds('tags=a')).toEqual([]);
    expect((await call('POST', `/datasets/${id}/annotation-tags`, { tags: ['a'], positions: [coco.annotations.length + 5] })).status).toBe(404);
    expect((await call('POST', `/datasets/${id}/annotation-tags`, { tags: ['a'], filter: {}, predictions: ['no-such-run'] })).status).toBe(404);
    expect((await call('POST', '/datasets/aaaaaaaaaaaaaaaa/tags', { tags: ['a'], filter: {} })).status).toBe(404);
    expect((await call('GET', '/datasets/aaaaaaaaaaaaaaaa/tags')).status).toBe(404);
    expect(await revision()).toBe(before);
  });
});
