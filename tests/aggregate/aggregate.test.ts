import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { COCO128, hasShared, RBC, RICE_PEST_YOLO } from '../helpers/fixtures.js';
import { codes, DEMO_IMAGES, DEMO_JSON, startHarness, type Harness } from '../graphql/harness.js';
import { categoryCounts, cooccurrence, fieldValues, numpyHistogram, select, type Coco, type CocoAnnotation } from './oracle.js';

/**
 * Aggregations through GraphQL and REST on the real server, on the demo dataset (with a prediction
 * run and metadata the test adds), the committed RBC export and, where ../shared is present,
 * coco128; every expected value is computed from the JSON files in this test (oracle.ts).
 */

let h: Harness;
/** The demo dataset with metadata on its images and a prediction run `model`. */
let demo: { id: string; coco: Coco; predictions: CocoAnnotation[] };
const datasets: Record<string, { id: string; coco: Coco }> = {};

const readCoco = async (file: string) => JSON.parse(await fs.readFile(file, 'utf8')) as Coco;
/** What the test writes into the demo's images: a nested key, an array, and a key only some have. */
const metadataOf = (i: number) => ({ camera: { model: ['alpha', 'beta', 'gamma'][i % 3], iso: 100 * (1 + (i % 2)) }, tags: i % 4 === 0 ? ['night', 'rain'] : ['day'], ...(i % 5 === 0 ? { operator: 'kim' } : {}) });

async function importRun(datasetId: string, resultsPath: string, name: string): Promise<void> {
  for await (const e of h.dv.predictions.import({ datasetId, resultsPath, name })) {
    if (e.stage === 'error') throw new Error(`import failed: ${e.code} ${e.message}`);
  }
}

beforeAll(async () => {
  h = await startHarness();
  const base = await readCoco(DEMO_JSON);
  const coco: Coco = { ...base, images: base.images.map((img, i) => ({ ...img, ...metadataOf(i) })) };
  const file = path.join(h.tmp, 'demo-metadata.json');
  await fs.writeFile(file, JSON.stringify(coco));
  const id = await h.ingest(file, DEMO_IMAGES, { datasetName: 'demo' });
  // A prediction run: every third ground-truth box, a score from its position, one image without any.
  const predictions = coco.annotations
    .filter((_, k) => k % 3 === 0)
    .map((a, k) => ({ image_id: a.image_id, category_id: a.category_id, bbox: a.bbox, score: ((k * 37) % 100) / 100 + 0.005 }));
  await fs.writeFile(path.join(h.tmp, 'model.json'), JSON.stringify(predictions));
  await importRun(id, path.join(h.tmp, 'model.json'), 'model');
  demo = { id, coco, predictions };
  datasets.demo = { id, coco };
  datasets.rbc = { id: await h.ingest(RBC('valid').annotations, RBC('valid').images), coco: await readCoco(RBC('valid').annotations) };
  if (hasShared) datasets.coco128 = { id: await h.ingest(COCO128.annotations, COCO128.images), coco: await readCoco(COCO128.annotations) };
}, 120_000);
afterAll(() => h?.close());

async function aggregate(id: string, selection: string, args = '', variables: Record<string, unknown> = {}) {
  const r = await h.gql(`query($id: ID!, $f: SampleFilter) { dataset(id: $id) { aggregate(filter: $f${args}) { ${selection} } } }`, { id, ...variables });
  expect(r.errors).toBeUndefined();
  return r.data.dataset.aggregate;
}

/** Edges agree to a relative 1e-12 (the same doubles, but exp/ln may differ in the last bit between engines). */
function expectEdges(got: number[], want: number[]) {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want[i]!))));
}

/** The category filter of each dataset's cases. */
const CATEGORY_FILTER: Record<string, string[]> = { demo: ['circle', 'star'], rbc: ['wbc'], coco128: ['person'] };
const FILTERS: [string, string[] | undefined][] = [['no filter', undefined], ['a category filter', CATEGORY_FILTER.demo]];

describe.each(['demo', 'rbc', 'coco128'])('%s', (name) => {
  const run = name === 'coco128' && !hasShared ? it.skip : it;
  describe.each([['no filter', false], ['a category filter', true]] as const)('under %s', (_label, filtered) => {
    const get = () => {
      const { id, coco } = datasets[name]!;
      const categories = filtered ? CATEGORY_FILTER[name] : undefined;
      return { id, coco, filter: categories ? { categories } : null, s: select(coco, categories) };
    };

    run('counts, categories (annotations and samples) and co-occurring pairs', async () => {
      const { id, coco, filter, s } = get();
      const a = await aggregate(id, 'sampleCount annotationCount categories { name count sampleCount } cooccurrence(limit: 7) { a b count }', '', { f: filter });
      expect(a.sampleCount).toBe(s.images.length);
      expect(a.annotationCount).toBe(s.annotations.length);
      expect(a.categories).toEqual(categoryCounts(coco, s));
      expect(a.cooccurrence).toEqual(cooccurrence(coco, s, 7));
    });

    run.each([
      ['BBOX_AREA', 12, null, false],
      ['ASPECT_RATIO', null, null, false],
      ['RELATIVE_SIZE', 9, null, false],
      ['ANNOTATIONS_PER_SAMPLE', null, null, false],
      ['WIDTH', 4, null, false],
      ['HEIGHT', null, null, false],
      ['PIXELS', 3, null, false],
      ['BBOX_AREA', 10, [100, 5000], false],
      ['BBOX_AREA', 8, null, true],
      ['BBOX_AREA', 6, [50, 20000], true],
    ] as const)('histogram %s, bins %s, range %s, log %s', async (field, bins, range, log) => {
      const { id, coco, filter, s } = get();
      const args = [`field: ${field}`, bins !== null ? `bins: ${bins}` : '', range ? `min: ${range[0]}, max: ${range[1]}` : '', log ? 'scale: LOG' : ''].filter(Boolean).join(', ');
      const a = await aggregate(id, `histogram(${args}) { field scale edges counts }`, '', { f: filter });
      const want = numpyHistogram(fieldValues(coco, s, field), bins, range ? [...range] : null, log);
      expect(a.histogram.counts).toEqual(want.counts);
      expectEdges(a.histogram.edges, want.edges);
      expect(a.histogram.edges).toHaveLength(a.histogram.counts.length + 1);
      expect(a.histogram.scale).toBe(log ? 'LOG' : 'LINEAR');
    });
  });
});

describe('boxes of zero width or height (real exporters write them)', () => {
  // The demo with every fourth box flattened: zero width, zero height, or both. A log scale leaves
  // their zero areas and sizes out, an aspect ratio the zero heights; the rest count as they are.
  let flat: { id: string; coco: Coco };
  beforeAll(async () => {
    const base = await readCoco(DEMO_JSON);
    const annotations = base.annotations.map((a, k) => {
      if (k % 4 !== 0) return a;
      const [x, y, w, hh] = a.bbox;
      const kind = (k / 4) % 3;
      return { ...a, bbox: [x!, y!, kind === 1 ? w! : 0, kind === 0 ? hh! : 0] };
    });
    const coco: Coco = { ...base, annotations };
    const file = path.join(h.tmp, 'demo-flat.json');
    await fs.writeFile(file, JSON.stringify(coco));
    flat = { id: await h.ingest(file, DEMO_IMAGES, { datasetName: 'flat' }), coco };
  });

  it.each([
    ['BBOX_AREA', 8, null, true],
    ['BBOX_AREA', null, null, true],
    ['BBOX_AREA', 6, [50, 20000], true],
    ['RELATIVE_SIZE', 5, null, true],
    ['RELATIVE_SIZE', 7, null, false],
    ['ASPECT_RATIO', null, null, false],
    ['ASPECT_RATIO', 4, null, true],
  ] as const)('histogram %s, bins %s, range %s, log %s, with and without a category filter', async (field, bins, range, log) => {
    expect(fieldValues(flat.coco, select(flat.coco, undefined), field).filter((v) => v === 0).length).toBeGreaterThan(0);
    for (const categories of [undefined, CATEGORY_FILTER.demo]) {
      const s = select(flat.coco, categories);
      const args = [`field: ${field}`, bins !== null ? `bins: ${bins}` : '', range ? `min: ${range[0]}, max: ${range[1]}` : '', log ? 'scale: LOG' : ''].filter(Boolean).join(', ');
      const a = await aggregate(flat.id, `histogram(${args}) { edges counts }`, '', { f: categories ? { categories } : null });
      const want = numpyHistogram(fieldValues(flat.coco, s, field), bins, range ? [...range] : null, log);
      expect(a.histogram.counts, String(categories)).toEqual(want.counts);
      expectEdges(a.histogram.edges, want.edges);
    }
  });
});

describe('the demo with a prediction run and metadata', () => {
  it.each(FILTERS)('annotation-level parts count the run with `predictions`, under %s', async (_label, categories) => {
    const f = categories ? { categories } : null;
    const s = select(demo.coco, categories, demo.predictions);
    const a = await aggregate(demo.id, 'annotationCount categories { name count sampleCount } histogram(field: SCORE, bins: 10) { edges counts } perSample: histogram(field: ANNOTATIONS_PER_SAMPLE) { edges counts }', ', predictions: "model"', { f });
    expect(a.annotationCount).toBe(s.annotations.length);
    expect(a.categories).toEqual(categoryCounts(demo.coco, s));
    const score = numpyHistogram(fieldValues(demo.coco, s, 'SCORE'), 10, null);
    expect(a.histogram.counts).toEqual(score.counts);
    expectEdges(a.histogram.edges, score.edges);
    expect(a.perSample.counts).toEqual(numpyHistogram(fieldValues(demo.coco, s, 'ANNOTATIONS_PER_SAMPLE'), null, null).counts);
  });

  it.each(FILTERS)('label sets and splits, under %s', async (_label, categories) => {
    const a = await aggregate(demo.id, 'labelSets { name kind count } splits { name count }', '', { f: categories ? { categories } : null });
    const gt = select(demo.coco, categories);
    expect(a.labelSets).toEqual([
      { name: 'ground_truth', kind: 'ground_truth', count: gt.annotations.length },
      { name: 'model', kind: 'predictions', count: select(demo.coco, categories, demo.predictions).annotations.length },
    ]);
    expect(a.splits).toEqual([{ name: null, count: gt.images.length }]);
  });

  it.each(FILTERS)('distinct metadata values with counts, under %s', async (_label, categories) => {
    const s = select(demo.coco, categories);
    const tally = (value: (img: Record<string, unknown>) => unknown) => {
      const counts = new Map<string, number>();
      for (const img of s.images) counts.set(JSON.stringify(value(img) ?? null), (counts.get(JSON.stringify(value(img) ?? null)) ?? 0) + 1);
      return [...counts].map(([v, count]) => ({ value: JSON.parse(v) as unknown, count, text: v }))
        .sort((x, y) => y.count - x.count || (x.text < y.text ? -1 : 1)).map(({ value, count }) => ({ value, count }));
    };
    const a = await aggregate(demo.id, 'model: metadata(path: "camera.model") { value count } iso: metadata(path: "camera.iso") { value count } first: metadata(path: "tags[0]") { value count } tags: metadata(path: "tags", limit: 1) { value count } operator: metadata(path: "operator") { value count }', '', { f: categories ? { categories } : null });
    const camera = (img: Record<string, unknown>) => img.camera as { model: string; iso: number };
    expect(a.model).toEqual(tally((img) => camera(img).model));
    expect(a.iso).toEqual(tally((img) => camera(img).iso));
    expect(a.first).toEqual(tally((img) => (img.tags as string[])[0]));
    expect(a.tags).toEqual(tally((img) => img.tags).slice(0, 1));
    expect(a.operator).toEqual(tally((img) => img.operator));
  });

  it('a change of the dataset is never answered from the cache: a new run shows at the next revision', async () => {
    const before = await aggregate(demo.id, 'labelSets { name count }');
    expect(before.labelSets.map((l: { name: string }) => l.name)).toEqual(['ground_truth', 'model']);
    await fs.writeFile(path.join(h.tmp, 'second.json'), JSON.stringify(demo.predictions.slice(0, 5)));
    await importRun(demo.id, path.join(h.tmp, 'second.json'), 'second');
    const after = await aggregate(demo.id, 'labelSets { name count }');
    expect(after.labelSets).toEqual([...before.labelSets, { name: 'second', count: 5 }]);
    await h.dv.predictions.delete(demo.id, 'second');
    expect(await aggregate(demo.id, 'labelSets { name count }')).toEqual(before);
  });
});

describe('histogram bins at their edges', () => {
  // Widths are whole numbers: with a step of 1 every value lies on an edge, and a range far
  // narrower than the values' spacing makes most edges the same double.
  const widths = () => fieldValues(demo.coco, select(demo.coco), 'WIDTH');
  it.each([
    ['a value on every edge', (w: number[]) => [Math.min(...w), Math.min(...w) + 40, 40] as const],
    ['equal edges (a range of a few ulps)', (w: number[]) => [w[0]!, w[0]! * (1 + 4 * Number.EPSILON), 1000] as const],
    ['values on both sides of the range', (w: number[]) => [Math.min(...w) + 1, Math.max(...w) - 1, 7] as const],
  ])('%s: counted as numpy counts them', async (_label, pick) => {
    const [min, max, bins] = pick(widths());
    const a = await aggregate(demo.id, `histogram(field: WIDTH, bins: ${bins}, min: ${min}, max: ${max}) { edges counts }`);
    const want = numpyHistogram(widths(), bins, [min, max]);
    expect(a.histogram.counts).toEqual(want.counts);
    expect(a.histogram.edges).toEqual(want.edges);
  });
});

describe('splits', () => {
  it('a YOLO export\'s splits, counted from its folders', async () => {
    let id = '';
    for await (const e of h.dv.ingestion.ingest({ annotationPath: path.join(RICE_PEST_YOLO, 'data.yaml') })) {
      if (e.stage === 'error') throw new Error(`ingest failed: ${e.message}`);
      if (e.stage === 'complete') id = e.dataset_id!;
    }
    // Each split of data.yaml names its image folder (relative to the dataset's folder).
    const yaml = parseYaml(await fs.readFile(path.join(RICE_PEST_YOLO, 'data.yaml'), 'utf8')) as Record<string, string>;
    const want: { name: string; count: number }[] = [];
    for (const split of ['train', 'val', 'test']) want.push({ name: split, count: (await fs.readdir(path.join(RICE_PEST_YOLO, yaml[split]!))).length });
    want.sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
    expect((await aggregate(id, 'splits { name count }')).splits).toEqual(want);
    // Filtered: only the split asked for.
    const val = want.find((w) => w.name === 'val')!;
    expect(await aggregate(id, 'sampleCount splits { name count }', '', { f: { split: 'val' } })).toEqual({ sampleCount: val.count, splits: [val] });
  });
});

describe('REST', () => {
  it('GET /datasets/{id}/aggregate answers what GraphQL answers, with the filter parameters of /samples', async () => {
    const g = await aggregate(demo.id, 'sampleCount annotationCount categories { categoryId name count sampleCount } splits { name count } labelSets { name kind count } cooccurrence(limit: 3) { a b count } area: histogram(field: BBOX_AREA, bins: 20) { edges counts } width: histogram(field: WIDTH) { edges counts } model: metadata(path: "camera.model") { value count }', '', { f: { categories: ['circle', 'star'] } });
    const res = await fetch(`${h.base}/datasets/${demo.id}/aggregate?category=circle&categories=star&include=categories,splits&include=label_sets&include=cooccurrence&cooccurrence_limit=3&category_samples=true&histogram=bbox_area:20&histogram=width&metadata_values=camera.model`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body).toEqual({
      sample_count: g.sampleCount,
      annotation_count: g.annotationCount,
      categories: g.categories.map((c: any) => ({ category_id: c.categoryId, name: c.name, count: c.count, sample_count: c.sampleCount })),
      splits: g.splits,
      label_sets: g.labelSets,
      cooccurrence: g.cooccurrence,
      histograms: [{ field: 'bbox_area', scale: 'linear', ...g.area }, { field: 'width', scale: 'linear', ...g.width }],
      metadata: [{ path: 'camera.model', values: g.model }],
    });
  });

  it('GET /datasets/{id}/aggregate/histogram takes bins, a range and a log scale', async () => {
    const res = await fetch(`${h.base}/datasets/${demo.id}/aggregate/histogram?field=bbox_area&bins=5&min=100&max=30000&scale=log&min_annotations=2`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { edges: number[]; counts: number[]; scale: string };
    const s = select(demo.coco);
    const chosen = new Set(s.images.filter((i) => s.annotations.filter((a) => a.image_id === i.id).length >= 2).map((i) => i.id));
    const want = numpyHistogram(s.annotations.filter((a) => chosen.has(a.image_id)).map((a) => a.bbox[2]! * a.bbox[3]!), 5, [100, 30000], true);
    expect(body.counts).toEqual(want.counts);
    expectEdges(body.edges, want.edges);
    expect(body.scale).toBe('log');
  });

  it.each([
    ['histogram?field=bbox_area&bins=5000', /query parameter "bins" must be at most 1000/],
    ['histogram?field=bbox_area&bins=0', /query parameter "bins" must be at least 1/],
    ['histogram?field=bbox_area&bins=2.5', /query parameter "bins" must be an integer/],
    ['histogram?field=box_size', /query parameter "field" must be one of bbox_area, aspect_ratio/],
    ['histogram?field=bbox_area&min=10', /give both min and max, or neither/],
    ['histogram?field=bbox_area&min=10&max=10', /min must be less than max/],
    ['histogram?field=bbox_area&min=0&max=10&scale=log', /a log scale needs min > 0/],
    ['histogram?field=score', /field score needs predictions/],
    ['?histogram=bbox_area:99999', /bins must be an integer between 1 and 1000/],
    ['?histogram=areas:3', /query parameter "histogram" "areas:3": "areas" is not a field/],
    ['?histogram=bbox_area:x', /bins "x" is not a whole number/],
    ['?include=categories,everything', /query parameter "include": "everything" is not a part; the parts are categories, splits, label_sets, cooccurrence/],
    ['?metadata_values=camera..model', /"camera\.\.model" is not a metadata path: at "\.\.model", expected \.name/],
    ['?metadata_values=$camera', /"\$camera" is not a metadata path: at "camera"/],
    ['?metadata_values=tags[one]', /"tags\[one\]" is not a metadata path: at "\[one\]", expected \.name .* or \[index\]/],
    ['?metadata_limit=0&metadata_values=tags', /query parameter "metadata_limit" must be at least 1/],
    ['?min_annotations=-1', /query parameter "min_annotations" must be at least 0/],
    ['?bins=3', /unknown parameter "bins"; the parameters are .*histogram/],
  ])('400 BAD_USER_INPUT for /aggregate/%s', async (query, message) => {
    const res = await fetch(`${h.base}/datasets/${demo.id}/aggregate${query.startsWith('?') ? '' : '/'}${query}`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect([res.status, body.error.code]).toEqual([400, 'BAD_USER_INPUT']);
    expect(body.error.message).toMatch(message);
  });

  it('404 for an unknown dataset or prediction run', async () => {
    expect((await fetch(`${h.base}/datasets/aaaaaaaaaaaaaaaa/aggregate`)).status).toBe(404);
    const res = await fetch(`${h.base}/datasets/${demo.id}/aggregate?predictions=nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/prediction run .* "nope" does not exist/);
  });
});

describe('GraphQL bad input', () => {
  it.each([
    ['histogram(field: BBOX_AREA, bins: 5000) { counts }', /bins must be an integer between 1 and 1000/],
    ['histogram(field: BBOX_AREA, bins: 0) { counts }', /bins must be an integer between 1 and 1000/],
    ['histogram(field: BBOX_AREA, max: 3) { counts }', /give both min and max, or neither .*; got only max/],
    ['histogram(field: BBOX_AREA, min: 5, max: 1) { counts }', /min must be less than max/],
    ['histogram(field: SCORE) { counts }', /field score needs predictions/],
    ['metadata(path: "camera model") { count }', /"camera model" is not a metadata path/],
    ['metadata(path: "") { count }', /a path must be 1 to 256 characters/],
    ['cooccurrence(limit: 100000) { count }', /limit must be an integer between 1 and 1000/],
  ])('%s is BAD_USER_INPUT naming the problem', async (selection, message) => {
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { aggregate { ${selection} } } }`, { id: demo.id });
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors![0]!.message).toMatch(message);
  });

  it('an unknown histogram field is refused before anything runs', async () => {
    const before = h.dv.db.queryCount;
    const r = await h.gql(`query($id: ID!) { dataset(id: $id) { aggregate { histogram(field: BOX_SIZE) { counts } } } }`, { id: demo.id });
    // Refused by GraphQL's own validation, with yoga's code for it and HTTP 400.
    expect(r.status).toBe(400);
    expect(r.errors![0]!.message).toMatch(/Value "BOX_SIZE" does not exist in "HistogramField" enum/);
    expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(h.dv.db.queryCount).toBe(before);
  });

  it('a bad filter is BAD_USER_INPUT, an unknown run NOT_FOUND', async () => {
    const bad = await h.gql(`query($id: ID!) { dataset(id: $id) { aggregate(filter: { minAnnotations: -1 }) { sampleCount } } }`, { id: demo.id });
    expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
    expect(bad.errors![0]!.message).toMatch(/filter\.minAnnotations must be an integer between 0/);
    const run = await h.gql(`query($id: ID!) { dataset(id: $id) { aggregate(predictions: "nope") { sampleCount } } }`, { id: demo.id });
    expect(codes(run)).toEqual(['NOT_FOUND']);
  });
});
