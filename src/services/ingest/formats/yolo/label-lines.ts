import { A, ANN_TEXT, kindCode, type ColumnsBuilder } from '../../../records/columns.js';
import type { WarningTally } from './warnings.js';

const POLYGON = kindCode('polygon');
const NONE = kindCode('none');
const SPACE = /\s+/;
/** The numbers of the line being read (grown as needed): no array per line. */
let scratch = new Float64Array(64);

/** A line's fields: most files separate them by one space, which a plain split handles without a regex. */
function fieldsOf(line: string): string[] {
  const f = line.split(' ');
  for (const x of f) if (x === '' || x.includes('\t')) return line.split(SPACE);
  return f;
}

export interface LabelContext {
  /** Class ids that `names` defines. */
  classIds: ReadonlySet<number>;
  /** `kpt_shape` of a pose dataset ([keypoints, 2 or 3]); null: boxes and polygons. */
  kptShape: readonly [number, number] | null;
  keepShapes: boolean;
  tally: WarningTally;
  /** Class ids met that `names` does not define (a category `class_<id>` is made for each). */
  unknownClassIds: Set<number>;
}

/**
 * Reads one label file (`class cx cy w h`, YOLO-seg `class x1 y1 x2 y2 …`, or pose
 * `class cx cy w h px py [v] …` when the YAML has `kpt_shape`) into annotation rows of the image
 * `imageId`, in pixels of its `width`×`height`. Returns the number of rows added; `nextId` is the
 * first annotation id to use. `where` names the file in warnings.
 */
export function readLabelText(
  text: string,
  where: string,
  imageId: number,
  width: number | null,
  height: number | null,
  nextId: number,
  out: ColumnsBuilder,
  ctx: LabelContext,
): number {
  // Blank lines at the end are the file's end, not empty lines (an empty file is a background
  // image): a line is read when it starts before the text's trailing whitespace.
  const end = text.trimEnd().length;
  let added = 0;
  for (let start = 0, i = 0; start < end; i++) {
    let stop = text.indexOf('\n', start);
    if (stop < 0) stop = text.length;
    const lineStart = start;
    start = stop + 1;
    // Most lines are a box of plain decimals: read in place. Anything else takes the general path.
    let cls = ctx.kptShape ? -1 : plainBox(text, lineStart, stop);
    let n = 4;
    if (cls < 0) {
      const line = text.slice(lineStart, stop).trim();
      if (line === '') {
        ctx.tally.add('empty_label_lines', `${where}:${i + 1}`);
        continue;
      }
      const f = fieldsOf(line);
      cls = Number(f[0]);
      n = f.length - 1;
      const shapeOk = ctx.kptShape
        ? n === 4 + ctx.kptShape[0] * ctx.kptShape[1]
        : n === 4 || (n >= 6 && n % 2 === 0);
      if (!Number.isInteger(cls) || cls < 0 || !shapeOk) {
        ctx.tally.add('unreadable_label_lines', `${where}:${i + 1}`);
        continue;
      }
      if (scratch.length < n) scratch = new Float64Array(n * 2);
      let finite = true;
      for (let k = 0; k < n; k++) {
        const x = Number(f[k + 1]);
        if (!Number.isFinite(x)) finite = false;
        scratch[k] = x;
      }
      if (!finite) {
        ctx.tally.add('unreadable_label_lines', `${where}:${i + 1}`);
        continue;
      }
    }
    const v = scratch;
    if (!ctx.classIds.has(cls)) {
      ctx.unknownClassIds.add(cls);
      ctx.tally.add('unknown_class_ids', `${where}:${i + 1} (class ${cls})`);
    }
    // Pose lines: the box and the keypoints' x, y are normalised; visibility flags are not.
    let outside = false;
    const coords = ctx.kptShape ? 4 : n;
    for (let k = 0; k < coords; k++) if (v[k]! < 0 || v[k]! > 1) outside = true;
    if (ctx.kptShape) {
      const [, dim] = ctx.kptShape;
      for (let k = 4; k < n; k += dim) if (v[k]! < 0 || v[k]! > 1 || v[k + 1]! < 0 || v[k + 1]! > 1) outside = true;
    }
    if (outside) ctx.tally.add('coordinates_outside_unit_range', `${where}:${i + 1}`);

    const o = out.row();
    const r = out.nums;
    r[o + A.id] = nextId + added;
    r[o + A.imageId] = imageId;
    r[o + A.categoryId] = cls;
    r[o + A.score] = NaN;
    r[o + A.isCrowd] = 0;
    const sized = width !== null && height !== null;
    let segmentation: string | null = null;
    let keypoints: string | null = null;
    if (n === 4 || ctx.kptShape) {
      const [cx, cy, w, h] = [v[0]!, v[1]!, v[2]!, v[3]!];
      if (sized) {
        r[o + A.x] = (cx - w / 2) * width;
        r[o + A.y] = (cy - h / 2) * height;
        r[o + A.w] = w * width;
        r[o + A.h] = h * height;
        r[o + A.area] = w * width * h * height;
      } else {
        r[o + A.x] = r[o + A.y] = r[o + A.w] = r[o + A.h] = r[o + A.area] = NaN;
      }
      r[o + A.kind] = NONE;
      r[o + A.polygonCount] = 0;
      r[o + A.pointCount] = 0;
      r[o + A.numKeypoints] = NaN;
      if (ctx.kptShape) {
        const [count, dim] = ctx.kptShape;
        const flat: number[] = [];
        let labelled = 0;
        for (let k = 0; k < count; k++) {
          const px = v[4 + k * dim]!;
          const py = v[5 + k * dim]!;
          // Two-number keypoints have no flag: Ultralytics counts (0, 0) as not labelled.
          const vis = dim === 3 ? v[6 + k * dim]! : px === 0 && py === 0 ? 0 : 2;
          if (vis > 0) labelled++;
          flat.push(sized ? round2(px * width) : px, sized ? round2(py * height) : py, vis);
        }
        r[o + A.numKeypoints] = labelled;
        if (ctx.keepShapes && sized) keypoints = JSON.stringify(flat);
      }
    } else {
      // A polygon: its box is its extent, its area the polygon's own (shoelace).
      const points = n / 2;
      let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity, twice = 0;
      if (sized) {
        for (let k = 0; k < n; k += 2) {
          const x = v[k]! * width;
          const y = v[k + 1]! * height;
          if (x < minX) minX = x;
          if (x > maxX) maxX = x;
          if (y < minY) minY = y;
          if (y > maxY) maxY = y;
          const nx = v[(k + 2) % n]! * width;
          const ny = v[(k + 3) % n]! * height;
          twice += x * ny - nx * y;
        }
        r[o + A.x] = minX;
        r[o + A.y] = minY;
        r[o + A.w] = maxX - minX;
        r[o + A.h] = maxY - minY;
        r[o + A.area] = Math.abs(twice) / 2;
        if (ctx.keepShapes) {
          const px: number[] = new Array<number>(n);
          for (let k = 0; k < n; k += 2) {
            px[k] = round2(v[k]! * width);
            px[k + 1] = round2(v[k + 1]! * height);
          }
          segmentation = `[${JSON.stringify(px)}]`;
        }
      } else {
        r[o + A.x] = r[o + A.y] = r[o + A.w] = r[o + A.h] = r[o + A.area] = NaN;
      }
      r[o + A.kind] = POLYGON;
      r[o + A.polygonCount] = 1;
      r[o + A.pointCount] = points;
      r[o + A.numKeypoints] = NaN;
    }
    out.text(ANN_TEXT.segmentation, segmentation);
    out.text(ANN_TEXT.keypoints, keypoints);
    // Without the image's size the line's own numbers are all there is: kept for the record.
    out.text(ANN_TEXT.extra, sized ? null : JSON.stringify({ yolo: Array.from(v.subarray(0, n)) }));
    added++;
  }
  return added;
}

/** Exact powers of ten: a decimal of at most 15 digits divided by one is rounded once, as Number() rounds it. */
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);
const SPACE_CODE = 32;
const DOT = 46;
const MINUS = 45;
const ZERO = 48;

/**
 * A box line `class cx cy w h` of plain decimals (`12 0.5 0.25 0.1 0.2`: digits, at most one `.`,
 * a leading `-`; fields apart by single spaces; a `\r` at the end), read without slicing it: the
 * class, with the four numbers in `scratch`; -1 for any other line, which the general path reads.
 * Every value is what Number() gives for its text: a decimal of at most 15 digits is an exact
 * integer, and one division by an exact power of ten rounds correctly (Clinger's fast path).
 */
function plainBox(text: string, start: number, stop: number): number {
  if (stop > start && text.charCodeAt(stop - 1) === 13) stop--;
  let at = start;
  let cls = 0;
  let digits = 0;
  for (; at < stop; at++) {
    const c = text.charCodeAt(at) - ZERO;
    if (c < 0 || c > 9) break;
    cls = cls * 10 + c;
    digits++;
  }
  if (digits === 0 || digits > 15) return -1;
  for (let k = 0; k < 4; k++) {
    if (at >= stop || text.charCodeAt(at) !== SPACE_CODE) return -1;
    at++;
    const negative = at < stop && text.charCodeAt(at) === MINUS;
    if (negative) at++;
    let m = 0;
    let count = 0;
    let fraction = -1;
    for (; at < stop; at++) {
      const code = text.charCodeAt(at);
      if (code === DOT && fraction < 0) {
        fraction = 0;
        continue;
      }
      const c = code - ZERO;
      if (c < 0 || c > 9) break;
      m = m * 10 + c;
      count++;
      if (fraction >= 0) fraction++;
    }
    // A bare `-`, `.`, `5.` or `.5`, or too many digits: the general path.
    if (count === 0 || count > 15 || fraction === 0 || (fraction > 0 && count === fraction)) return -1;
    const x = fraction > 0 ? m / POW10[fraction]! : m;
    scratch[k] = negative ? -x : x;
  }
  return at === stop ? cls : -1;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
