import type { Token } from 'stream-json/parser.js';
import { DataVisorError } from '../../../errors.js';
import { isNonStandardNumber, restoreNonStandardText } from '../../../common/json-tokens.js';
// RAW_KEYS: annotation keys kept as compact JSON text instead of JS objects (most of the file's numbers).
import { RAW_KEYS, readShapeSummary } from './shape-skipper.js';
import type { AnnotationRecord, CategoryRecord, ImageRecord, LicenseRecord } from '../../../records/types.js';
import type { CocoSection, CocoSink } from './wire.js';

/**
 * A token-level state machine over a COCO file. It never holds more than one array element:
 * each image, annotation, category or license is built from tokens, checked, handed to the sink,
 * and dropped. It assumes no key order: real files put `categories` last and group annotations
 * by category, so nothing here resolves references; that is done afterwards in SQL.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Container = Json[] | { [k: string]: Json };

const SECTIONS = new Set<string>(['info', 'licenses', 'images', 'annotations', 'categories']);
const ARRAY_SECTIONS = new Set<string>(['licenses', 'images', 'annotations', 'categories']);

const IMAGE_KEYS = new Set(['id', 'file_name', 'width', 'height', 'license', 'coco_url', 'flickr_url', 'date_captured']);
const ANNOTATION_KEYS = new Set([
  'id', 'image_id', 'category_id', 'bbox', 'area', 'iscrowd', 'segmentation', 'num_keypoints', 'keypoints', 'score',
]);
const CATEGORY_KEYS = new Set(['id', 'name', 'supercategory']);

export class CocoReader {
  private depth = 0;
  private seenRoot = false;
  /** NaN / Infinity values read as null (docs/ingestion.md). */
  nonStandardNumbers = 0;
  /** Set once the text holds rewritten NaN / Infinity: only then are tokens checked for them. */
  private nonStandard = false;
  /** Top-level key being read, or null between keys. */
  private topKey: string | null = null;
  private section: CocoSection | 'skip' | null = null;
  private readonly seenSections = new Set<string>();
  /** Index of the element being read in the current array section. */
  private index = -1;

  /** Generic assembly of the current element (or of `info`). */
  private stack: Container[] = [];
  private keys: (string | null)[] = [];
  private element: { [k: string]: Json } | null = null;

  /** Raw-text mode for segmentation / keypoints. */
  private rawKey: string | null = null;
  private rawDepth = 0;
  private rawText = '';
  private rawNeedComma = false;
  private rawNumbers = 0;
  private rawArraysAtTwo = 0;
  private rawStartsWithObject = false;
  private rawHasStringCounts = false;
  private readonly raw: Record<string, { text: string; numbers: number; arrays: number; object: boolean; stringCounts: boolean }> = {};

  /**
   * `keepShapes`: build the compact JSON text of segmentation and keypoints. Without it the
   * reader only counts polygons and points, which is most of the parse's saving when masks are
   * not wanted (docs/ingestion.md).
   */
  constructor(
    private readonly sink: CocoSink,
    private readonly keepShapes = true,
    /** The prefix of the polygon summaries a ShapeSkipper writes into the text, if one runs. */
    private readonly shapePrefix: string | null = null,
  ) {}

  /**
   * Where the reader is, for error messages: ` (in images[12])`. With 'after', the element is the
   * last one the reader saw begin, which a malformed block may have gone past.
   */
  location(relation: 'in' | 'after' = 'in'): string {
    const prefix = relation === 'in' ? 'in' : 'after the start of';
    if (this.section && this.section !== 'skip' && this.index >= 0 && ARRAY_SECTIONS.has(this.section)) {
      return ` (${prefix} ${this.section}[${this.index}])`;
    }
    return this.topKey ? ` (${prefix} "${this.topKey}")` : '';
  }

  /** The pump rewrote NaN / Infinity somewhere ahead: check tokens from now on. */
  readonly expectNonStandardNumbers = (): void => {
    this.nonStandard = true;
  };

  /**
   * Called once the whole text is read: checks the overall shape. The last part of a file split
   * for parallel parsing passes false: its sections are checked with the other parts' ones.
   */
  finish(checkSections = true): void {
    if (this.depth !== 0) throw this.invalid('the file ends before the top-level object is closed');
    if (checkSections) requireSections(this.seenSections);
  }

  /** Top-level sections met so far. */
  get sections(): string[] {
    return [...this.seenSections];
  }

  /** True right after an element of the annotations array closed: where a split file's parts meet. */
  get betweenAnnotations(): boolean {
    return this.depth === 2 && this.section === 'annotations' && this.element === null && this.rawKey === null && this.index >= 0;
  }

  readonly onTokens = (tokens: readonly Token[]): void => {
    const n = tokens.length;
    for (let i = 0; i < n; i++) {
      if (this.rawKey !== null) {
        i = this.rawRun(tokens, i);
        continue;
      }
      const t = tokens[i]!;
      switch (t.name) {
        case 'startObject':
        case 'startArray':
          this.open(t.name === 'startObject');
          break;
        case 'endObject':
        case 'endArray':
          this.close();
          break;
        case 'keyValue':
          this.key(this.nonStandard ? restoreNonStandardText(t.value) : t.value);
          break;
        case 'stringValue':
          this.value(this.nonStandard ? restoreNonStandardText(t.value) : t.value);
          break;
        case 'numberValue':
          if (this.nonStandard && isNonStandardNumber(t.value)) {
            this.nonStandardNumbers++;
            this.value(null);
          } else {
            this.value(Number(t.value));
          }
          break;
        case 'nullValue':
          this.value(null);
          break;
        case 'trueValue':
          this.value(true);
          break;
        case 'falseValue':
          this.value(false);
          break;
        default:
          break;
      }
    }
  };

  private open(isObject: boolean): void {
    const depth = ++this.depth;
    if (depth === 1) {
      if (!isObject) throw this.invalid('the top-level value must be an object, found an array');
      if (this.seenRoot) throw this.invalid('the file holds more than one top-level value');
      this.seenRoot = true;
      return;
    }
    if (depth === 2) {
      const key = this.topKey!;
      if (ARRAY_SECTIONS.has(key)) {
        if (isObject) throw this.invalid(`"${key}" must be an array, found an object`);
        this.enterSection(key as CocoSection);
        return;
      }
      if (key === 'info' && isObject) {
        this.enterSection('info');
        this.beginElement();
        return;
      }
      if (key === 'info') throw this.invalid('"info" must be an object');
      this.section = 'skip';
      return;
    }
    if (this.section === 'skip') return;
    if (depth === 3 && this.section !== 'info') {
      this.index++;
      if (!isObject) throw this.invalid(`each element of "${this.section}" must be an object`);
      this.beginElement();
      return;
    }
    // Nested value inside an element.
    const parentKey = this.keys[this.keys.length - 1] ?? null;
    if (this.section === 'annotations' && depth === 4 && parentKey !== null && RAW_KEYS.has(parentKey)) {
      this.beginRaw(parentKey, isObject);
      return;
    }
    const c: Container = isObject ? {} : [];
    this.stack.push(c);
    this.keys.push(null);
  }

  private close(): void {
    const depth = this.depth--;
    if (depth === 1) {
      // The document is closed: anything after it is outside every section.
      this.topKey = null;
      this.section = null;
      return;
    }
    if (this.section === 'skip') {
      if (depth === 2) this.section = null;
      return;
    }
    if (depth === 2) {
      if (this.section === 'info') this.endElement();
      this.section = null;
      this.index = -1;
      return;
    }
    if (depth === 3 && this.section !== 'info') {
      this.endElement();
      return;
    }
    const c = this.stack.pop()!;
    this.keys.pop();
    this.value(c as Json);
  }

  private key(k: string): void {
    if (this.depth === 1) {
      this.topKey = k;
      return;
    }
    if (this.section === 'skip') return;
    this.keys[this.keys.length - 1] = k;
  }

  private value(v: Json): void {
    if (this.depth === 0) throw this.invalid(`the top-level value must be an object, found ${describe(v)}`);
    if (this.depth === 1) {
      // A scalar at top level: only our sections have meaning, and they must not be scalars.
      const key = this.topKey!;
      if (SECTIONS.has(key) && key !== 'info') throw this.invalid(`"${key}" must be an array, found ${describe(v)}`);
      return;
    }
    if (this.section === 'skip') return;
    if (this.depth === 2 && this.section !== 'info') {
      throw this.invalid(`each element of "${this.section}" must be an object, found ${describe(v)}`);
    }
    if (this.shapePrefix !== null && typeof v === 'string' && this.depth === 3 && this.section === 'annotations' && this.summarized(v)) return;
    const top = this.stack[this.stack.length - 1]!;
    if (Array.isArray(top)) top.push(v);
    else top[this.keys[this.keys.length - 1]!] = v;
  }

  private enterSection(name: CocoSection): void {
    if (this.seenSections.has(name)) throw this.invalid(`the top-level key "${name}" appears twice`);
    this.seenSections.add(name);
    this.section = name;
    this.index = -1;
    this.sink.section(name);
  }

  private beginElement(): void {
    this.element = {};
    this.stack = [this.element];
    this.keys = [null];
    for (const k in this.raw) delete this.raw[k];
  }

  private endElement(): void {
    const e = this.element!;
    this.element = null;
    this.stack = [];
    this.keys = [];
    switch (this.section) {
      case 'images':
        this.sink.image(this.toImage(e));
        break;
      case 'annotations':
        this.sink.annotation(this.toAnnotation(e));
        break;
      case 'categories':
        this.sink.category(this.toCategory(e));
        break;
      case 'licenses':
        this.sink.license(this.toLicense(e));
        break;
      case 'info':
        this.sink.info(e);
        break;
      default:
        break;
    }
  }

  // --- raw text for segmentation / keypoints -------------------------------------------------

  private beginRaw(key: string, isObject: boolean): void {
    this.rawKey = key;
    this.rawDepth = 1;
    this.rawText = isObject ? '{' : '[';
    this.rawNeedComma = false;
    this.rawNumbers = 0;
    this.rawArraysAtTwo = 0;
    this.rawStartsWithObject = isObject;
    this.rawHasStringCounts = false;
  }

  /**
   * Consumes raw-mode tokens from `tokens[i]` on, until the raw value closes or the block ends;
   * returns the index of the last token consumed. Segmentation numbers are ~90% of a COCO file's
   * tokens, so this loop keeps its state in locals.
   */
  private rawRun(tokens: readonly Token[], i: number): number {
    let text = this.rawText;
    let needComma = this.rawNeedComma;
    let numbers = this.rawNumbers;
    let depth = this.rawDepth;
    const keep = this.keepShapes;
    const n = tokens.length;
    for (; i < n; i++) {
      const t = tokens[i]!;
      const name = t.name;
      if (name === 'numberValue') {
        let v = t.value;
        if (this.nonStandard && isNonStandardNumber(v)) {
          this.nonStandardNumbers++;
          v = 'null';
        }
        if (keep) text += needComma ? `,${v}` : v;
        needComma = true;
        numbers++;
      } else if (name === 'startArray' || name === 'startObject') {
        if (keep) text += (needComma ? ',' : '') + (name === 'startArray' ? '[' : '{');
        needComma = false;
        if (++depth === 2 && name === 'startArray') this.rawArraysAtTwo++;
      } else if (name === 'endArray' || name === 'endObject') {
        if (keep) text += name === 'endArray' ? ']' : '}';
        needComma = true;
        if (--depth === 0) break;
      } else if (name === 'keyValue') {
        if (keep) text += `${needComma ? ',' : ''}${JSON.stringify(this.nonStandard ? restoreNonStandardText(t.value) : t.value)}:`;
        needComma = false;
      } else if (name === 'stringValue') {
        if (keep) text += (needComma ? ',' : '') + JSON.stringify(this.nonStandard ? restoreNonStandardText(t.value) : t.value);
        needComma = true;
        if (this.rawStartsWithObject && depth === 1) this.rawHasStringCounts = true;
      } else if (name === 'nullValue' || name === 'trueValue' || name === 'falseValue') {
        if (keep) text += (needComma ? ',' : '') + String(t.value);
        needComma = true;
      }
    }
    this.rawText = text;
    this.rawNeedComma = needComma;
    this.rawNumbers = numbers;
    this.rawDepth = depth;
    if (depth === 0) {
      this.depth--; // the raw value's own close
      this.endRaw();
    }
    return i;
  }

  /** A polygon summary of the ShapeSkipper stands for the raw value it replaced. */
  private summarized(v: string): boolean {
    const key = this.keys[this.keys.length - 1];
    if (key == null || !RAW_KEYS.has(key)) return false;
    const summary = readShapeSummary(v, this.shapePrefix!);
    if (!summary) return false;
    this.raw[key] = { text: '', numbers: summary.numbers, arrays: summary.arrays, object: false, stringCounts: false };
    this.element![key] = true;
    return true;
  }

  private endRaw(): void {
    this.raw[this.rawKey!] = {
      text: this.rawText,
      numbers: this.rawNumbers,
      arrays: this.rawArraysAtTwo,
      object: this.rawStartsWithObject,
      stringCounts: this.rawHasStringCounts,
    };
    // Leave a marker in the element so presence is known; the text lives in `raw`.
    this.element![this.rawKey!] = true;
    this.rawKey = null;
    this.rawText = '';
  }

  // --- element conversion --------------------------------------------------------------------

  private toImage(e: { [k: string]: Json }): ImageRecord {
    return {
      id: this.requireId(e, 'id'),
      fileName: this.requireString(e, 'file_name'),
      width: this.optionalDimension(e, 'width'),
      height: this.optionalDimension(e, 'height'),
      license: this.optionalInt(e, 'license'),
      cocoUrl: this.optionalString(e, 'coco_url'),
      flickrUrl: this.optionalString(e, 'flickr_url'),
      dateCaptured: this.optionalScalarText(e, 'date_captured'),
      extra: extraKeys(e, IMAGE_KEYS),
    };
  }

  private toAnnotation(e: { [k: string]: Json }): AnnotationRecord {
    const bbox = this.optionalBbox(e);
    const seg = this.raw.segmentation;
    let kind: AnnotationRecord['segmentationKind'] = 'none';
    if (seg) {
      if (seg.object) kind = seg.stringCounts ? 'compressed_rle' : 'rle';
      else if (seg.numbers > 0) kind = 'polygon';
    } else if (e.segmentation !== undefined && e.segmentation !== null && typeof e.segmentation !== 'boolean') {
      throw this.invalid(`"segmentation" must be a list of polygons or an RLE object, found ${describe(e.segmentation)}`);
    }
    const kp = this.raw.keypoints;
    const crowd = e.iscrowd;
    if (crowd !== undefined && crowd !== null && crowd !== 0 && crowd !== 1 && typeof crowd !== 'boolean') {
      throw this.invalid(`"iscrowd" must be 0 or 1, found ${describe(crowd)}`);
    }
    return {
      id: this.requireId(e, 'id'),
      imageId: this.requireId(e, 'image_id'),
      categoryId: this.requireId(e, 'category_id'),
      bbox,
      area: this.optionalNumber(e, 'area'),
      isCrowd: crowd === 1 || crowd === true,
      segmentationKind: kind,
      polygonCount: kind === 'polygon' ? seg!.arrays : 0,
      pointCount: kind === 'polygon' ? Math.floor(seg!.numbers / 2) : 0,
      segmentation: seg && kind !== 'none' && this.keepShapes ? seg.text : null,
      numKeypoints: this.optionalInt32(e, 'num_keypoints'),
      keypoints: kp && this.keepShapes ? kp.text : null,
      score: this.optionalNumber(e, 'score'),
      extra: extraKeys(e, ANNOTATION_KEYS),
    };
  }

  private toCategory(e: { [k: string]: Json }): CategoryRecord {
    return {
      id: this.requireId(e, 'id'),
      name: this.requireString(e, 'name'),
      supercategory: this.optionalString(e, 'supercategory'),
      extra: extraKeys(e, CATEGORY_KEYS),
    };
  }

  private toLicense(e: { [k: string]: Json }): LicenseRecord {
    return { id: this.requireId(e, 'id'), name: this.optionalString(e, 'name'), url: this.optionalString(e, 'url') };
  }

  private requireId(e: { [k: string]: Json }, key: string): number {
    const v = e[key];
    if (v === undefined) throw this.invalid(`"${key}" is missing`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw this.invalid(`"${key}" must be an integer, found ${describe(v)}`);
    }
    return v;
  }

  private requireString(e: { [k: string]: Json }, key: string): string {
    const v = e[key];
    if (v === undefined) throw this.invalid(`"${key}" is missing`);
    if (typeof v !== 'string' || v === '') throw this.invalid(`"${key}" must be a non-empty string, found ${describe(v)}`);
    return v;
  }

  private optionalString(e: { [k: string]: Json }, key: string): string | null {
    const v = e[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw this.invalid(`"${key}" must be a string, found ${describe(v)}`);
    return v;
  }

  /** Dates and years appear both as strings and numbers in real exports; keep their text. */
  private optionalScalarText(e: { [k: string]: Json }, key: string): string | null {
    const v = e[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' && typeof v !== 'number') throw this.invalid(`"${key}" must be a string, found ${describe(v)}`);
    return String(v);
  }

  private optionalNumber(e: { [k: string]: Json }, key: string): number | null {
    const v = e[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number') throw this.invalid(`"${key}" must be a number, found ${describe(v)}`);
    return v;
  }

  private optionalInt(e: { [k: string]: Json }, key: string): number | null {
    const v = this.optionalNumber(e, key);
    if (v !== null && !Number.isSafeInteger(v)) throw this.invalid(`"${key}" must be an integer, found ${v}`);
    return v;
  }

  /** A count stored as INTEGER: a larger one would wrap in the column. */
  private optionalInt32(e: { [k: string]: Json }, key: string): number | null {
    const v = this.optionalInt(e, key);
    if (v !== null && (v < -2_147_483_648 || v > 2_147_483_647)) throw this.invalid(`"${key}" must be a 32-bit integer, found ${v}`);
    return v;
  }

  private optionalDimension(e: { [k: string]: Json }, key: string): number | null {
    const v = this.optionalInt(e, key);
    if (v !== null && (v <= 0 || v > 2_147_483_647)) throw this.invalid(`"${key}" must be a positive integer, found ${v}`);
    return v;
  }

  private optionalBbox(e: { [k: string]: Json }): AnnotationRecord['bbox'] {
    const v = e.bbox;
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number')) {
      throw this.invalid(`"bbox" must be [x, y, width, height] of numbers, found ${describe(v)}`);
    }
    return v as [number, number, number, number];
  }

  private invalid(message: string): DataVisorError {
    return new DataVisorError('INVALID_COCO', `Invalid COCO${this.location()}: ${message}`);
  }
}

/** The sections without which a file is not a COCO instances file. */
export function requireSections(seen: ReadonlySet<string>): void {
  for (const required of ['images', 'annotations', 'categories']) {
    if (!seen.has(required)) {
      throw new DataVisorError('INVALID_COCO', `Not a COCO instances file: the top-level key "${required}" is missing`);
    }
  }
}

function extraKeys(e: { [k: string]: Json }, known: Set<string>): Record<string, unknown> | null {
  let extra: Record<string, unknown> | null = null;
  for (const k in e) {
    if (!known.has(k)) (extra ??= {})[k] = e[k];
  }
  return extra;
}

function describe(v: Json | undefined): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}
