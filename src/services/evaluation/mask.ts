/**
 * Run-length encoded binary masks on cocoapi's pixel grid (common/maskApi.c), so that areas and
 * IoUs equal pycocotools' bit for bit. A mask is stored column-major (x outer, y inner) as
 * alternating runs, the first one background (0 when the mask starts with a set pixel).
 */
export interface Rle {
  readonly h: number;
  readonly w: number;
  readonly counts: Uint32Array;
}

/** 32^k: the weight of the k-th 5-bit group; 8 groups hold any 32-bit count or delta. */
const MAX_GROUPS = 8;
const GROUP_WEIGHT = Array.from({ length: MAX_GROUPS + 1 }, (_, k) => 32 ** k);

/** cocoapi's compressed string (rleFrString): 6-bit groups, chars 48..111, deltas from index 3 on. */
export function rleFromString(s: string, h: number, w: number): Rle {
  const counts = new Uint32Array(s.length); // at least one char per count
  let m = 0;
  let p = 0;
  while (p < s.length) {
    // Arithmetic instead of bit operators: a count may exceed 2^31.
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length || k >= MAX_GROUPS) throw new Error('malformed compressed RLE string');
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * GROUP_WEIGHT[k]!;
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10) !== 0) x -= GROUP_WEIGHT[k]!; // sign-extend the last group
    }
    if (m > 2) x += counts[m - 2]!;
    counts[m++] = x; // wraps modulo 2^32, as C's cast to uint
  }
  return { h, w, counts: counts.slice(0, m) };
}

/** Inverse of rleFromString (rleToString). */
export function rleToString(rle: Rle): string {
  const c = rle.counts;
  let s = '';
  for (let i = 0; i < c.length; i++) {
    let x = c[i]!;
    if (i > 2) x -= c[i - 2]!;
    let more = true;
    while (more) {
      let ch = ((x % 32) + 32) % 32;
      x = Math.floor(x / 32);
      more = (ch & 0x10) !== 0 ? x !== -1 : x !== 0;
      if (more) ch |= 0x20;
      s += String.fromCharCode(ch + 48);
    }
  }
  return s;
}

/** An uncompressed `counts` list (as COCO crowd annotations carry), taken as uint32 like numpy. */
export function rleFromCounts(counts: readonly number[], h: number, w: number): Rle {
  return { h, w, counts: Uint32Array.from(counts) };
}

/** Column-major 0/1 pixels to runs (rleEncode). */
export function rleEncode(pixels: Uint8Array, h: number, w: number): Rle {
  const out: number[] = [];
  let prev = 0;
  let run = 0;
  for (let j = 0; j < h * w; j++) {
    const v = pixels[j] ? 1 : 0;
    if (v !== prev) {
      out.push(run);
      run = 0;
      prev = v;
    }
    run++;
  }
  out.push(run);
  return { h, w, counts: Uint32Array.from(out) };
}

/** Runs to column-major 0/1 pixels (rleDecode). */
export function rleDecode(rle: Rle): Uint8Array {
  const m = new Uint8Array(rle.h * rle.w);
  let p = 0;
  let v = 0;
  for (const n of rle.counts) {
    if (v) m.fill(1, p, p + n);
    p += n;
    v ^= 1;
  }
  return m;
}

/** Number of set pixels (rleArea). */
export function rleArea(rle: Rle): number {
  let a = 0;
  for (let j = 1; j < rle.counts.length; j += 2) a += rle.counts[j]!;
  return a;
}

/**
 * Bounding box [x, y, w, h] as cocoapi computes it (rleToBbox): from the first and last pixel of
 * each run; a run that wraps to another column widens the box to the full height.
 */
export function rleToBbox(rle: Rle): [number, number, number, number] {
  const { h, w, counts } = rle;
  const m = Math.floor(counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += counts[j]!;
    const t = cc - (j % 2);
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/**
 * Union of masks of one size (rleMerge with intersect=0). Output runs never have length 0 except a
 * leading background run, as cocoapi's.
 */
export function rleMerge(rles: readonly Rle[]): Rle {
  if (rles.length === 0) return { h: 0, w: 0, counts: new Uint32Array(0) };
  let acc = rles[0]!;
  for (let i = 1; i < rles.length; i++) {
    const b = rles[i]!;
    if (b.h !== acc.h || b.w !== acc.w) return { h: 0, w: 0, counts: new Uint32Array(0) };
    acc = unionOfTwo(acc, b);
  }
  return acc === rles[0] ? { h: acc.h, w: acc.w, counts: acc.counts.slice() } : acc;
}

function unionOfTwo(a: Rle, b: Rle): Rle {
  const A = a.counts;
  const B = b.counts;
  const out: number[] = [];
  let ia = 0;
  let ib = 0;
  let ca = A.length ? A[ia++]! : 0;
  let cb = B.length ? B[ib++]! : 0;
  let va = false;
  let vb = false;
  let v = false;
  let run = 0;
  for (;;) {
    // Step to the next boundary of either mask, skipping empty runs.
    while (ca === 0 && ia < A.length) {
      ca = A[ia++]!;
      va = !va;
    }
    while (cb === 0 && ib < B.length) {
      cb = B[ib++]!;
      vb = !vb;
    }
    if (ca === 0 && cb === 0) break;
    const step = ca === 0 ? cb : cb === 0 ? ca : Math.min(ca, cb);
    const cur = (ca > 0 && va) || (cb > 0 && vb);
    if (cur !== v) {
      out.push(run);
      run = 0;
      v = cur;
    }
    run += step;
    if (ca > 0) ca -= step;
    if (cb > 0) cb -= step;
  }
  out.push(run);
  return { h: a.h, w: a.w, counts: Uint32Array.from(out) };
}

/**
 * One polygon [x0, y0, x1, y1, ...] rasterised exactly as cocoapi's rleFrPoly: the boundary is walked
 * on a 5x upsampled grid, the points where it crosses a pixel column's centre become run toggles.
 */
export function rleFromPolygon(xy: readonly number[], h: number, w: number): Rle {
  const scale = 5;
  const k = Math.floor(xy.length / 2);
  // C's (int) cast truncates towards zero.
  const px = new Int32Array(k + 1);
  const py = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) px[j] = Math.trunc(scale * xy[j * 2]! + 0.5);
  for (let j = 0; j < k; j++) py[j] = Math.trunc(scale * xy[j * 2 + 1]! + 0.5);
  px[k] = px[0]!;
  py[k] = py[0]!;
  let n = 0;
  for (let j = 0; j < k; j++) n += Math.max(Math.abs(px[j]! - px[j + 1]!), Math.abs(py[j]! - py[j + 1]!)) + 1;
  const u = new Int32Array(n);
  const v = new Int32Array(n);
  let m = 0;
  for (let j = 0; j < k; j++) {
    let xs = px[j]!;
    let xe = px[j + 1]!;
    let ys = py[j]!;
    let ye = py[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      [xs, xe] = [xe, xs];
      [ys, ye] = [ye, ys];
    }
    // A repeated vertex gives 0/0 = NaN here; its single point never sits next to a column change,
    // so (as in C, where the cast is undefined) its value is never read.
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u[m] = t + xs;
        v[m] = Math.trunc(ys + s * t + 0.5);
        m++;
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v[m] = t + ys;
        u[m] = Math.trunc(xs + s * t + 0.5);
        m++;
      }
    }
  }
  // Points where the walk enters a new column, back on the pixel grid.
  const toggles: number[] = [];
  for (let j = 1; j < m; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    toggles.push(xd * h + yd);
  }
  toggles.push(h * w);
  const sortedToggles = Float64Array.from(toggles).sort();
  // Differences between consecutive toggles are the runs; a zero run cancels two toggles.
  const diffs = new Array<number>(sortedToggles.length);
  let prev = 0;
  for (let j = 0; j < sortedToggles.length; j++) {
    diffs[j] = sortedToggles[j]! - prev;
    prev = sortedToggles[j]!;
  }
  const runs: number[] = [diffs[0]!];
  for (let j = 1; j < diffs.length; ) {
    if (diffs[j]! > 0) runs.push(diffs[j++]!);
    else {
      j++;
      if (j < diffs.length) runs[runs.length - 1] = runs[runs.length - 1]! + diffs[j++]!;
    }
  }
  return { h, w, counts: Uint32Array.from(runs) };
}

/** Union of the polygons of one object (pycocotools' frPyObjects then merge). */
export function rleFromPolygons(polygons: readonly (readonly number[])[], h: number, w: number): Rle {
  return rleMerge(polygons.map((p) => rleFromPolygon(p, h, w)));
}

/** A box [x, y, w, h] as the polygon cocoapi's rleFrBbox draws. */
export function rleFromBbox(bbox: readonly number[], h: number, w: number): Rle {
  const [x, y, bw, bh] = bbox as [number, number, number, number];
  const xe = x + bw;
  const ye = y + bh;
  return rleFromPolygon([x, y, x, ye, xe, ye, xe, y], h, w);
}

/** Intersection and union pixel counts of two masks of the same size. */
function intersectionAndUnion(a: Uint32Array, b: Uint32Array): [number, number] {
  let ia = 0;
  let ib = 0;
  let ca = a.length ? a[ia++]! : 0;
  let cb = b.length ? b[ib++]! : 0;
  let va = false;
  let vb = false;
  let inter = 0;
  let union = 0;
  for (;;) {
    while (ca === 0 && ia < a.length) {
      ca = a[ia++]!;
      va = !va;
    }
    while (cb === 0 && ib < b.length) {
      cb = b[ib++]!;
      vb = !vb;
    }
    if (ca === 0 || cb === 0) {
      // One mask is exhausted: the rest of the other only adds to the union.
      if (ca > 0 && va) union += ca;
      if (cb > 0 && vb) union += cb;
      for (; ia < a.length; ia++) if ((ia & 1) === 1) union += a[ia]!;
      for (; ib < b.length; ib++) if ((ib & 1) === 1) union += b[ib]!;
      return [inter, union];
    }
    const c = ca < cb ? ca : cb;
    if (va || vb) {
      union += c;
      if (va && vb) inter += c;
    }
    ca -= c;
    cb -= c;
  }
}

/**
 * IoU of every detection mask with every GT mask (rleIou), written row-major [d * G + g] into `out`.
 * For a crowd GT the intersection is divided by the detection's area. Masks whose boxes overlap but
 * whose sizes differ give -1, as in cocoapi.
 */
export function maskIou(
  dts: readonly Rle[],
  gts: readonly Rle[],
  iscrowd: ArrayLike<number | boolean>,
  out: Float64Array = new Float64Array(dts.length * gts.length),
): Float64Array {
  const G = gts.length;
  const dtBoxes = dts.map(rleToBbox);
  const gtBoxes = gts.map(rleToBbox);
  for (let d = 0; d < dts.length; d++) {
    const dt = dts[d]!;
    const db = dtBoxes[d]!;
    for (let g = 0; g < G; g++) {
      const gt = gts[g]!;
      const gb = gtBoxes[g]!;
      const at = d * G + g;
      out[at] = 0;
      // cocoapi only looks at the runs when the masks' boxes overlap.
      if (Math.min(db[0] + db[2], gb[0] + gb[2]) - Math.max(db[0], gb[0]) <= 0) continue;
      if (Math.min(db[1] + db[3], gb[1] + gb[3]) - Math.max(db[1], gb[1]) <= 0) continue;
      if (dt.h !== gt.h || dt.w !== gt.w) {
        out[at] = -1;
        continue;
      }
      const [inter, union] = intersectionAndUnion(dt.counts, gt.counts);
      if (inter > 0) out[at] = inter / (iscrowd[g] ? rleArea(dt) : union);
    }
  }
  return out;
}
