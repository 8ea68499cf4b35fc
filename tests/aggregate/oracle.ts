/**
 * The expected answers of the aggregations, computed from a COCO file with plain loops: the oracle
 * the tests check DataVisor's SQL against. Histograms follow numpy.histogram's definition directly
 * (edges from linspace, each value placed by a binary search over them), not the bin arithmetic the
 * SQL uses.
 */

export interface CocoImage { id: number; width: number; height: number; [k: string]: unknown }
export interface CocoAnnotation { image_id: number; category_id: number; bbox: number[]; score?: number }
export interface Coco { images: CocoImage[]; annotations: CocoAnnotation[]; categories: { id: number; name: string }[] }

export interface Selection {
  images: CocoImage[];
  /** Annotations of the selected images. */
  annotations: CocoAnnotation[];
}

/** The images having an annotation in one of `categories` (all images when absent), and their annotations. */
export function select(coco: Coco, categories?: string[], annotations: CocoAnnotation[] = coco.annotations): Selection {
  let images = coco.images;
  if (categories) {
    const ids = new Set(coco.categories.filter((c) => categories.includes(c.name)).map((c) => c.id));
    const having = new Set(coco.annotations.filter((a) => ids.has(a.category_id)).map((a) => a.image_id));
    images = images.filter((i) => having.has(i.id));
  }
  const chosen = new Set(images.map((i) => i.id));
  return { images, annotations: annotations.filter((a) => chosen.has(a.image_id)) };
}

const byCountThenName = <T extends { count: number; name: string }>(a: T, b: T) => b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function categoryCounts(coco: Coco, s: Selection): { name: string; count: number; sampleCount: number }[] {
  return coco.categories
    .map((c) => {
      const mine = s.annotations.filter((a) => a.category_id === c.id);
      return { name: c.name, count: mine.length, sampleCount: new Set(mine.map((a) => a.image_id)).size };
    })
    .filter((c) => c.count > 0)
    .sort(byCountThenName);
}

/** Pairs of category ids (a < b) in the same image, most images first, then by ids. */
export function cooccurrence(coco: Coco, s: Selection, limit: number): { a: string; b: string; count: number }[] {
  const perImage = new Map<number, Set<number>>();
  for (const a of s.annotations) {
    let set = perImage.get(a.image_id);
    if (!set) perImage.set(a.image_id, (set = new Set()));
    set.add(a.category_id);
  }
  const pairs = new Map<string, number>();
  for (const set of perImage.values()) {
    const ids = [...set].sort((x, y) => x - y);
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) pairs.set(`${ids[i]},${ids[j]}`, (pairs.get(`${ids[i]},${ids[j]}`) ?? 0) + 1);
  }
  const name = (id: number) => coco.categories.find((c) => c.id === id)!.name;
  return [...pairs]
    .map(([k, count]) => ({ ids: k.split(',').map(Number) as [number, number], count }))
    .sort((x, y) => y.count - x.count || x.ids[0] - y.ids[0] || x.ids[1] - y.ids[1])
    .slice(0, limit)
    .map(({ ids, count }) => ({ a: name(ids[0]), b: name(ids[1]), count }));
}

/** The value of each histogram field, per annotation or per image. */
export function fieldValues(coco: Coco, s: Selection, field: string): number[] {
  const size = new Map(coco.images.map((i) => [i.id, i]));
  switch (field) {
    case 'BBOX_AREA':
      return s.annotations.map((a) => a.bbox[2]! * a.bbox[3]!);
    case 'ASPECT_RATIO':
      return s.annotations.filter((a) => a.bbox[3] !== 0).map((a) => a.bbox[2]! / a.bbox[3]!);
    case 'RELATIVE_SIZE':
      return s.annotations.map((a) => Math.sqrt((a.bbox[2]! * a.bbox[3]!) / (size.get(a.image_id)!.width * size.get(a.image_id)!.height)));
    case 'SCORE':
      return s.annotations.map((a) => a.score!);
    case 'ANNOTATIONS_PER_SAMPLE':
      return s.images.map((i) => s.annotations.filter((a) => a.image_id === i.id).length);
    case 'WIDTH':
      return s.images.map((i) => i.width);
    case 'HEIGHT':
      return s.images.map((i) => i.height);
    case 'PIXELS':
      return s.images.map((i) => i.width * i.height);
    default:
      throw new Error(`no oracle for ${field}`);
  }
}

/**
 * numpy.histogram(values, bins, range): edges = linspace(lo, hi, bins + 1); v goes to the last i
 * with edges[i] ≤ v (searchsorted right, minus one), v = hi to the last bin; values outside the
 * range are not counted. Without bins, Sturges: ceil(log2(n) + 1) over the values in the range.
 * With `log`, the same over ln(v) for v > 0, and the edges exponentiated.
 */
export function numpyHistogram(raw: number[], bins: number | null, range: [number, number] | null, log = false): { edges: number[]; counts: number[] } {
  const values = log ? raw.filter((v) => v > 0).map(Math.log) : raw.filter(Number.isFinite);
  let lo: number;
  let hi: number;
  if (range) [lo, hi] = log ? [Math.log(range[0]), Math.log(range[1])] : range;
  else if (values.length === 0) [lo, hi] = [0, 1];
  else [lo, hi] = [values.reduce((m, v) => Math.min(m, v)), values.reduce((m, v) => Math.max(m, v))];
  if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  const inRange = values.filter((v) => v >= lo && v <= hi);
  const n = bins ?? Math.ceil(Math.log2(Math.max(inRange.length, 1)) + 1);
  const step = (hi - lo) / n;
  const edges = Array.from({ length: n + 1 }, (_, i) => (i === n ? hi : i * step + lo));
  const counts = new Array<number>(n).fill(0);
  for (const v of inRange) {
    let a = 0;
    let b = n + 1; // edges[a] ≤ v < edges[b]
    while (b - a > 1) {
      const m = (a + b) >> 1;
      if (edges[m]! <= v) a = m;
      else b = m;
    }
    counts[Math.min(a, n - 1)]!++;
  }
  return { edges: log ? edges.map(Math.exp) : edges, counts };
}
