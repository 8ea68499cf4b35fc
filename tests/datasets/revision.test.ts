import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startHarness, type Harness } from '../graphql/harness.js';

/**
 * Datasets change after their ingest (predictions, tags): every change goes through
 * DatasetService.change, which bumps the dataset's revision, and no answer derived from the
 * dataset's content (REST's page cache and ETags, category lists, GraphQL cursors, counts) may
 * show the state before it.
 */

const IMAGES = 40;
/** Image i has a cat when i is even and a dog when i is a multiple of 3. */
function cocoFile() {
  const images = Array.from({ length: IMAGES }, (_, i) => ({ id: 100 + i, file_name: `img${i}.jpg`, width: 64, height: 48 }));
  const annotations: object[] = [];
  for (let i = 0; i < IMAGES; i++) {
    if (i % 2 === 0) annotations.push({ id: annotations.length + 1, image_id: 100 + i, category_id: 1, bbox: [1, 2, 10, 12], area: 120, iscrowd: 0 });
    if (i % 3 === 0) annotations.push({ id: annotations.length + 1, image_id: 100 + i, category_id: 2, bbox: [5, 5, 20, 20], area: 400, iscrowd: 0 });
  }
  return { images, annotations, categories: [{ id: 1, name: 'cat' }, { id: 2, name: 'dog' }] };
}
const CATS = Math.ceil(IMAGES / 2);
const DOGS = Math.ceil(IMAGES / 3);

let h: Harness;
let id: string;

beforeAll(async () => {
  h = await startHarness();
  const folder = path.join(h.tmp, 'pets');
  await fs.mkdir(folder);
  await fs.writeFile(path.join(folder, 'pets.json'), JSON.stringify(cocoFile()));
  id = await h.ingest(path.join(folder, 'pets.json'), folder, { datasetName: 'pets' });
});
afterAll(() => h?.close());

const rest = async (query: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${h.base}/samples?dataset_id=${id}&${query}`, { headers });
  return { status: res.status, etag: res.headers.get('etag'), body: res.status === 200 ? ((await res.json()) as { total: number; items: { id: number; annotation_count: number }[] }) : null };
};

const GRAPH = `query($id: ID!, $after: String) {
  dataset(id: $id) {
    revision annotationCount
    categories { name annotationCount }
    samples(filter: { category: "cat" }, first: 5, after: $after) { totalCount pageInfo { endCursor } }
  }
}`;

const removeCats = (tx: { run(sql: string, params?: unknown[]): Promise<void> }) =>
  tx.run('DELETE FROM annotations WHERE dataset_id = $1 AND category_id = 1', [id]);

describe('a dataset changed through the service layer', () => {
  it('leaves no stale answer over REST or GraphQL', async () => {
    // Answers before the change, cached by the server (the second request is served from memory).
    const before = await rest('category=cat');
    expect(before.body!.total).toBe(CATS);
    expect((await rest('category=cat', { 'if-none-match': before.etag! })).status).toBe(304);
    const firstPage = await rest('limit=6');
    expect(firstPage.body!.items.map((s) => s.annotation_count)).toEqual([2, 0, 1, 1, 1, 0]);
    const g1 = await h.gql(GRAPH, { id });
    expect(g1.data.dataset).toMatchObject({
      revision: 0, annotationCount: CATS + DOGS,
      categories: [{ name: 'cat', annotationCount: CATS }, { name: 'dog', annotationCount: DOGS }],
      samples: { totalCount: CATS },
    });
    const oldCursor = g1.data.dataset.samples.pageInfo.endCursor as string;

    const changed = await h.dv.datasets.change(id, removeCats, { recount: true });
    expect(changed.revision).toBe(1);

    // REST: the cached page is not served, the old ETag no longer matches, counts are recomputed.
    const after = await rest('category=cat', { 'if-none-match': before.etag! });
    expect(after.status).toBe(200);
    expect(after.body!.total).toBe(0);
    expect((await rest('limit=6')).body!.items.map((s) => s.annotation_count)).toEqual([1, 0, 0, 1, 0, 0]);
    const ds = (await (await fetch(`${h.base}/datasets/${id}`)).json()) as { revision: number; annotation_count: number };
    expect(ds).toMatchObject({ revision: 1, annotation_count: DOGS });

    // GraphQL: the revision, category counts and totals are the new ones; the old cursor is refused.
    const g2 = await h.gql(GRAPH, { id });
    expect(g2.data.dataset).toMatchObject({
      revision: 1, annotationCount: DOGS,
      categories: [{ name: 'cat', annotationCount: 0 }, { name: 'dog', annotationCount: DOGS }],
      samples: { totalCount: 0 },
    });
    const stale = await h.gql(GRAPH, { id, after: oldCursor });
    expect(codes(stale)).toEqual(['BAD_USER_INPUT']);
    expect(stale.errors![0]!.message).toMatch(/has changed since the cursor was made \(revision 0, now 1\)/);
  });

  it('is all or nothing: a change that throws leaves rows and revision as they were', async () => {
    const before = (await h.dv.datasets.get(id)).revision;
    const dogs = await rest('category=dog');
    await expect(
      h.dv.datasets.change(id, async (tx) => {
        await tx.run('DELETE FROM annotations WHERE dataset_id = $1', [id]);
        throw new Error('the change failed half-way');
      }),
    ).rejects.toThrow('the change failed half-way');
    expect((await h.dv.datasets.get(id)).revision).toBe(before);
    expect((await rest('category=dog')).body!.total).toBe(dogs.body!.total);
  });

  it('of an unknown dataset is NOT_FOUND and changes nothing', async () => {
    await expect(h.dv.datasets.change('aaaaaaaaaaaaaaaa', removeCats)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
