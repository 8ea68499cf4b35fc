import { A, ANN_TEXT, type ColumnsBuilder } from '../records/columns.js';

/**
 * The plain results of a results file read in place from its bytes, with no token per value: the
 * shape detectron2, mmdetection, Ultralytics, YOLOX and loadRes write for boxes,
 * `{"image_id": 1, "category_id": 2, "bbox": [x, y, w, h], "score": 0.9}`, with other keys whose
 * values are scalars skipped as the token reader skips them. Anything else (a segmentation, a
 * nested or non-standard value, a key twice, an id that is not an integer, a missing field, a
 * byte it does not expect) is not read here: the scan stops at the start of that result and the
 * token reader (results-reader.ts) reads on from it, so its rows, errors and positions are the
 * token reader's. A row read here is what the token reader makes of the same result: numbers as
 * Number() gives them, the area by loadRes' rule (the file's first result decides), id =
 * position + 1.
 *
 * A stream of chunks is scanned result by result; a result cut by a chunk's end waits for the
 * next chunk (its bytes so far are kept, a few hundred at most).
 */

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const E_LOWER = 0x65;
const E_UPPER = 0x45;

/** Exact powers of ten: a decimal of at most 15 digits divided by one rounds once, as Number() rounds it (Clinger's fast path). */
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);
const MAX_DIGITS = 15;

/** A result's keys this scan reads, by their bytes. */
const IMAGE_ID = bytes('image_id');
const CATEGORY_ID = bytes('category_id');
const BBOX = bytes('bbox');
const SCORE = bytes('score');
const SEGMENTATION = bytes('segmentation');
const TRUE = bytes('true');
const FALSE = bytes('false');
const NULL = bytes('null');

const SEEN_IMAGE = 1;
const SEEN_CATEGORY = 2;
const SEEN_BBOX = 4;
const SEEN_SCORE = 8;
/** `segmentation`: read here only as null (no mask), and it may come twice, as the token reader allows. */
const SEGMENTATION_KEY = 16;

/** Where the scan is between results. */
type Phase = 'before-array' | 'first' | 'after-result' | 'next' | 'closed';

/** Marks a scan that ran out of bytes inside a result or a value. */
const MORE = -1;
/** Marks a result or a byte this scan does not read. */
const OTHER = -2;

export class PlainResults {
  /** Results read. */
  count = 0;
  /** Whether the first result had a box (null: none read yet). */
  firstHasBbox: boolean | null;
  private phase: Phase;
  /** Bytes of a result cut by the last chunk's end. */
  private carry: Uint8Array | null = null;
  // The result being read.
  private seen = 0;
  private imageId = 0;
  private categoryId = 0;
  private score = 0;
  private readonly box = new Float64Array(4);

  constructor(
    /** Where rows go: `builder` is read for every row (its owner replaces it when a batch is taken). */
    private readonly out: { builder: ColumnsBuilder },
    options: { insideArray: boolean; firstHasBbox?: boolean | null },
  ) {
    this.phase = options.insideArray ? 'first' : 'before-array';
    this.firstHasBbox = options.firstHasBbox ?? null;
  }

  /** Whether the scan is inside the results array (past its `[`, or started inside it). */
  get insideArray(): boolean {
    return this.phase !== 'before-array';
  }

  /** True right after a result (or between results): where the ranges of a split file end. */
  get betweenResults(): boolean {
    return this.carry === null && (this.phase === 'after-result' || this.phase === 'next') && this.count > 0;
  }

  /**
   * Reads the results of `chunk` (after any bytes kept from the last one). Returns null when every
   * byte was read or kept; otherwise the bytes from the first result (or the first byte) it does
   * not read to the chunk's end, for the token reader to read on from.
   */
  scan(chunk: Uint8Array): Uint8Array | null {
    let buf = chunk;
    if (this.carry) {
      buf = new Uint8Array(this.carry.length + chunk.length);
      buf.set(this.carry);
      buf.set(chunk, this.carry.length);
      this.carry = null;
    }
    let i = 0;
    const n = buf.length;
    for (;;) {
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return null;
      const c = buf[i]!;
      switch (this.phase) {
        case 'before-array':
          if (c !== OPEN_ARRAY) return buf.subarray(i);
          this.phase = 'first';
          i++;
          continue;
        case 'after-result':
          if (c === COMMA) {
            this.phase = 'next';
            i++;
            continue;
          }
          if (c === CLOSE_ARRAY) {
            this.phase = 'closed';
            i++;
            continue;
          }
          return buf.subarray(i);
        case 'first':
        case 'next': {
          if (c !== OPEN_OBJECT) return buf.subarray(i);
          const end = this.result(buf, i);
          if (end === MORE) {
            this.carry = buf.slice(i);
            return null;
          }
          if (end === OTHER) return buf.subarray(i);
          this.push();
          this.phase = 'after-result';
          i = end;
          continue;
        }
        case 'closed':
          return buf.subarray(i);
      }
    }
  }

  /**
   * At the end of the text: whether it was read to the end here. False leaves the end (an array
   * not closed, a result cut short) to the token reader, which says what is wrong.
   */
  get complete(): boolean {
    return this.carry === null && this.phase === 'closed';
  }

  /** Bytes kept of a result cut by the last chunk's end (for the token reader, when the scan ends there). */
  takeCarry(): Uint8Array | null {
    const c = this.carry;
    this.carry = null;
    return c;
  }

  /** Reads the result at `buf[at]` (a `{`): the index after it, MORE or OTHER. */
  private result(buf: Uint8Array, at: number): number {
    const n = buf.length;
    this.seen = 0;
    let i = at + 1;
    for (;;) {
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return MORE;
      if (buf[i] !== QUOTE) return OTHER;
      const keyStart = i + 1;
      i = keyStart;
      while (i < n && buf[i] !== QUOTE && buf[i] !== BACKSLASH) i++;
      if (i === n) return MORE;
      if (buf[i] === BACKSLASH) return OTHER;
      const keyEnd = i;
      i++;
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return MORE;
      if (buf[i] !== COLON) return OTHER;
      i++;
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return MORE;
      const key = keyOf(buf, keyStart, keyEnd);
      if (key !== 0 && key !== SEGMENTATION_KEY && (this.seen & key) !== 0) return OTHER;
      this.seen |= key;
      if (key === SEGMENTATION_KEY) {
        if (i + NULL.length >= n) return MORE;
        if (!same(buf, i, NULL)) return OTHER;
        i += NULL.length;
      } else if (key === SEEN_BBOX) {
        const r = this.bbox(buf, i);
        if (r < 0) return r;
        i = r;
      } else if (key !== 0) {
        const v = this.number(buf, i);
        if (v === MORE || v === OTHER) return v;
        const value = this.value;
        if (key === SEEN_SCORE) this.score = value;
        else {
          if (!Number.isSafeInteger(value)) return OTHER;
          if (key === SEEN_IMAGE) this.imageId = value;
          else this.categoryId = value;
        }
        i = v;
      } else {
        const r = this.skipScalar(buf, i);
        if (r < 0) return r;
        i = r;
      }
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return MORE;
      if (buf[i] === COMMA) {
        i++;
        continue;
      }
      if (buf[i] !== CLOSE_OBJECT) return OTHER;
      if ((this.seen & (SEEN_IMAGE | SEEN_CATEGORY | SEEN_SCORE)) !== (SEEN_IMAGE | SEEN_CATEGORY | SEEN_SCORE)) return OTHER;
      return i + 1;
    }
  }

  /** `[x, y, w, h]` at `buf[at]` into `box`: the index after it, MORE or OTHER (an empty box, or another count, is the token reader's). */
  private bbox(buf: Uint8Array, at: number): number {
    const n = buf.length;
    if (buf[at] !== OPEN_ARRAY) return OTHER;
    let i = at + 1;
    for (let k = 0; k < 4; k++) {
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return MORE;
      const r = this.number(buf, i);
      if (r === MORE || r === OTHER) return r;
      this.box[k] = this.value;
      i = r;
      while (i < n && isSpace(buf[i]!)) i++;
      if (i === n) return MORE;
      if (buf[i] !== (k < 3 ? COMMA : CLOSE_ARRAY)) return OTHER;
      i++;
    }
    return i;
  }

  /** The last number() read. */
  private value = 0;

  /**
   * A JSON number at `buf[at]` into `value`: the index after it, MORE (it may go on in the next
   * chunk) or OTHER. Up to 15 digits without an exponent are computed in place (exactly Number()'s
   * value); others go through Number() of their text.
   */
  private number(buf: Uint8Array, at: number): number {
    const n = buf.length;
    let i = at;
    const negative = buf[i] === MINUS;
    if (negative) i++;
    if (i === n) return MORE;
    const first = buf[i]!;
    if (first < ZERO || first > NINE) return OTHER;
    let m = 0;
    let digits = 0;
    if (first === ZERO) {
      i++;
      digits = 1;
    } else {
      while (i < n && buf[i]! >= ZERO && buf[i]! <= NINE) {
        m = m * 10 + (buf[i]! - ZERO);
        digits++;
        i++;
      }
    }
    let fraction = 0;
    if (i < n && buf[i] === DOT) {
      i++;
      const from = i;
      while (i < n && buf[i]! >= ZERO && buf[i]! <= NINE) {
        m = m * 10 + (buf[i]! - ZERO);
        i++;
      }
      fraction = i - from;
      digits += fraction;
      if (i === n) return MORE;
      if (fraction === 0) return OTHER;
    }
    let exponent = false;
    if (i < n && (buf[i] === E_LOWER || buf[i] === E_UPPER)) {
      exponent = true;
      i++;
      if (i < n && (buf[i] === PLUS || buf[i] === MINUS)) i++;
      const from = i;
      while (i < n && buf[i]! >= ZERO && buf[i]! <= NINE) i++;
      if (i === n) return MORE;
      if (i === from) return OTHER;
    }
    // A number ends at the chunk's end only if the next chunk cannot continue it.
    if (i === n) return MORE;
    if (exponent || digits > MAX_DIGITS) {
      this.value = Number(latin1(buf, at, i));
      // 1e400: the token reader says what is wrong with it (a score) or counts it (a box).
      if (!Number.isFinite(this.value)) return OTHER;
    } else {
      const x = fraction > 0 ? m / POW10[fraction]! : m;
      this.value = negative ? -x : x;
    }
    return i;
  }

  /**
   * A scalar the token reader skips at `buf[at]`: a string without escapes, a number, true,
   * false or null. The index after it, MORE or OTHER (an object, an array, an escape).
   */
  private skipScalar(buf: Uint8Array, at: number): number {
    const n = buf.length;
    const c = buf[at]!;
    if (c === QUOTE) {
      for (let i = at + 1; i < n; i++) {
        const d = buf[i]!;
        if (d === QUOTE) return i + 1;
        if (d === BACKSLASH || d < SPACE) return OTHER;
      }
      return MORE;
    }
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.number(buf, at);
    for (const word of [TRUE, FALSE, NULL]) {
      if (c !== word[0]) continue;
      if (at + word.length >= n) return MORE;
      return same(buf, at, word) ? at + word.length : OTHER;
    }
    return OTHER;
  }

  /** The result read as a row, as the token reader makes it. */
  private push(): void {
    const hasBox = (this.seen & SEEN_BBOX) !== 0;
    this.firstHasBbox ??= hasBox;
    const c = this.out.builder;
    const o = c.row();
    const r = c.nums;
    const b = this.box;
    r[o + A.id] = this.count + 1;
    r[o + A.imageId] = this.imageId;
    r[o + A.categoryId] = this.categoryId;
    r[o + A.x] = hasBox ? b[0]! : NaN;
    r[o + A.y] = hasBox ? b[1]! : NaN;
    r[o + A.w] = hasBox ? b[2]! : NaN;
    r[o + A.h] = hasBox ? b[3]! : NaN;
    // loadRes: with a box first in the file every area is the box's; without, the mask's (none here).
    r[o + A.area] = hasBox && this.firstHasBbox ? b[2]! * b[3]! : NaN;
    r[o + A.score] = this.score;
    r[o + A.numKeypoints] = NaN;
    r[o + A.polygonCount] = 0;
    r[o + A.pointCount] = 0;
    r[o + A.isCrowd] = 0;
    r[o + A.kind] = 0; // 'none'
    r[o + A.quirks] = 0;
    c.text(ANN_TEXT.segmentation, null);
    c.text(ANN_TEXT.keypoints, null);
    c.text(ANN_TEXT.extra, null);
    this.count++;
  }
}

function isSpace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

function keyOf(buf: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len === IMAGE_ID.length && same(buf, start, IMAGE_ID)) return SEEN_IMAGE;
  if (len === CATEGORY_ID.length && same(buf, start, CATEGORY_ID)) return SEEN_CATEGORY;
  if (len === BBOX.length && same(buf, start, BBOX)) return SEEN_BBOX;
  if (len === SCORE.length && same(buf, start, SCORE)) return SEEN_SCORE;
  if (len === SEGMENTATION.length && same(buf, start, SEGMENTATION)) return SEGMENTATION_KEY;
  return 0;
}

function same(buf: Uint8Array, at: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if (buf[at + k] !== word[k]) return false;
  return true;
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
