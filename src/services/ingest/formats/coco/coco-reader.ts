import type { Token } from 'stream-json/parser.js';
import { DataVisorError } from '../../../errors.js';
import { isNonStandardNumber, nonStandardValue, restoreNonStandardText } from '../../../common/json-tokens.js';
// RAW_KEYS: annotation keys kept as compact JSON text instead of JS objects (most of the file's numbers).
import { RAW_KEYS, readShapeSummary } from './shape-skipper.js';
import { ANNOTATION_QUIRKS, IMAGE_QUIRKS } from '../../../records/quirks.js';
import { isSafeRelativeName } from '../../../storage/paths.js';
import type { AnnotationRecord, CategoryRecord, ImageRecord, LicenseRecord } from '../../../records/types.js';
import type { CocoSection, CocoSink } from './wire.js';

/**
 * A token-level state machine over a COCO file. It never holds more than one array element:
 * each image, annotation, category or license is built from tokens, checked, handed to the sink,
 * and dropped. It assumes no key order: real files put `categories` last and group annotations
 * by category, so nothing here resolves references; that is done afterwards in SQL.
 */

type Json = null | boolean | number | string | Json[] | JsonObject;
type JsonObject = { [k: string]: Json };
type Container = Json[] | JsonObject;

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
  /** NaN / Infinity tokens read (docs/ingestion.md); each field decides what its value becomes. */
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
  private element: Container | null = null;
  /** What converting the current element read leniently: its quirk flags, and values kept aside in extra. */
  private quirks = 0;
  private extra: Record<string, unknown> | null = null;

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
            this.value(nonStandardValue(t.value));
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
      if (key === 'info') {
        // Informational: any value is kept (toInfo).
        this.enterSection('info');
        this.beginElement(isObject ? {} : []);
        return;
      }
      this.section = 'skip';
      return;
    }
    if (this.section === 'skip') return;
    if (depth === 3 && this.section !== 'info') {
      this.index++;
      // A licenses entry of any shape is read; toLicense decides whether it can be stored.
      if (!isObject && this.section !== 'licenses') throw this.invalid(`each element of "${this.section}" must be an object`);
      this.beginElement(isObject ? {} : []);
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
      // A scalar at top level: only our sections have meaning. The informational ones may be
      // anything ("licenses": null is none); the others must be arrays.
      const key = this.topKey!;
      if (key === 'info' && v !== null) {
        this.enterSection('info');
        this.sink.info(toInfo(v));
        this.section = null;
      } else if (SECTIONS.has(key) && key !== 'info' && !(key === 'licenses' && v === null)) {
        throw this.invalid(`"${key}" must be an array, found ${describe(v)}`);
      }
      return;
    }
    if (this.section === 'skip') return;
    if (this.depth === 2 && this.section === 'licenses') {
      this.index++;
      this.sink.license(this.toLicense(v));
      return;
    }
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

  private beginElement(root: Container): void {
    this.element = root;
    this.stack = [root];
    this.keys = [null];
    for (const k in this.raw) delete this.raw[k];
  }

  private endElement(): void {
    const e = this.element!;
    this.element = null;
    this.stack = [];
    this.keys = [];
    // Only licenses and info elements may be arrays (open() refuses them elsewhere).
    switch (this.section) {
      case 'images':
        this.sink.image(this.toImage(e as JsonObject));
        break;
      case 'annotations':
        this.sink.annotation(this.toAnnotation(e as JsonObject));
        break;
      case 'categories':
        this.sink.category(this.toCategory(e as JsonObject));
        break;
      case 'licenses':
        this.sink.license(this.toLicense(e));
        break;
      case 'info':
        this.sink.info(toInfo(e));
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
    (this.element as JsonObject)[key] = true;
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
    (this.element as JsonObject)[this.rawKey!] = true;
    this.rawKey = null;
    this.rawText = '';
  }

  // --- element conversion --------------------------------------------------------------------
  // Ids, references, file names and geometry decide whether a file can be read: a wrong one is
  // INVALID_COCO. The other fields only inform, and real exporters write them loosely (TACO's
  // `"license": "CC"`): a value of another type is kept as found (as text in a text column, else
  // in the row's metadata / extra) and the row flagged for a warning (docs/ingestion.md, "Field by field").

  private toImage(e: JsonObject): ImageRecord {
    this.beginRow(e, IMAGE_KEYS);
    // Object literals evaluate in order: extra and quirks last, after every field has been read.
    return {
      id: this.requireId(e, 'id'),
      fileName: this.fileName(e),
      width: this.dimension(e, 'width'),
      height: this.dimension(e, 'height'),
      license: this.licenseId(e),
      cocoUrl: text(e.coco_url),
      flickrUrl: text(e.flickr_url),
      dateCaptured: text(e.date_captured),
      extra: this.extra,
      quirks: this.quirks,
    };
  }

  private toAnnotation(e: JsonObject): AnnotationRecord {
    this.beginRow(e, ANNOTATION_KEYS);
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
    return {
      id: this.requireId(e, 'id'),
      imageId: this.requireId(e, 'image_id'),
      categoryId: this.requireId(e, 'category_id'),
      bbox,
      area: this.area(e),
      isCrowd: this.isCrowd(e),
      segmentationKind: kind,
      polygonCount: kind === 'polygon' ? seg!.arrays : 0,
      pointCount: kind === 'polygon' ? Math.floor(seg!.numbers / 2) : 0,
      segmentation: seg && kind !== 'none' && this.keepShapes ? seg.text : null,
      // A count stored as INTEGER: a larger one would wrap in the column.
      numKeypoints: this.informational(e, 'num_keypoints', isInt32),
      keypoints: kp && this.keepShapes ? kp.text : null,
      score: this.informational(e, 'score', isNumber),
      extra: this.extra,
      quirks: this.quirks,
    };
  }

  private toCategory(e: JsonObject): CategoryRecord {
    const name = e.name;
    return {
      id: this.requireId(e, 'id'),
      // The APIs find categories by name, so one is required; a number is its own text.
      name: typeof name === 'number' && Number.isFinite(name) ? String(name) : this.requireString(e, 'name'),
      supercategory: text(e.supercategory),
      extra: extraKeys(e, CATEGORY_KEYS),
    };
  }

  /** An entry without an integer id has nothing that can refer to it: it is reported, not stored. */
  private toLicense(e: Json): LicenseRecord {
    if (!isObject(e)) return { id: null, name: text(e), url: null };
    const id = e.id;
    return { id: typeof id === 'number' && Number.isSafeInteger(id) ? id : null, name: text(e.name), url: text(e.url) };
  }

  private beginRow(e: JsonObject, known: Set<string>): void {
    this.quirks = 0;
    this.extra = extraKeys(e, known);
  }

  /** Keeps a value that does not fit its column in the row's extra, under its own key. */
  private keep(key: string, v: Json, quirk: number): void {
    (this.extra ??= {})[key] = v;
    this.quirks |= quirk;
  }

  /** A number COCO defines for annotations that only informs: null when absent, kept in extra when it does not fit. */
  private informational(e: JsonObject, key: string, fits: (v: Json) => v is number): number | null {
    const v = e[key] ?? null;
    if (absent(v)) return null;
    if (fits(v)) return v;
    this.keep(key, v, ANNOTATION_QUIRKS.keptInExtra);
    return null;
  }

  /** NaN / Infinity: null, flagged, so that it is counted and stays out of every statistic. */
  private area(e: JsonObject): number | null {
    const v = e.area;
    if (typeof v !== 'number' || Number.isFinite(v)) return this.informational(e, 'area', isNumber);
    this.quirks |= ANNOTATION_QUIRKS.areaNotFinite;
    return null;
  }

  private isCrowd(e: JsonObject): boolean {
    const v = e.iscrowd ?? null;
    if (v === 1 || v === true) return true;
    if (!absent(v) && v !== 0 && v !== false) this.keep('iscrowd', v, ANNOTATION_QUIRKS.keptInExtra);
    return false;
  }

  /** A license id, or null: any other value (text such as "CC") is kept in metadata.license. */
  private licenseId(e: JsonObject): number | null {
    const v = e.license ?? null;
    if (absent(v)) return null;
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    this.keep('license', v, IMAGE_QUIRKS.licenseNotAnId);
    return null;
  }

  /** A positive integer; the same as text is read as the number; anything else is kept in metadata. */
  private dimension(e: JsonObject, key: string): number | null {
    const v = e[key] ?? null;
    if (absent(v)) return null;
    if (isDimension(v)) return v;
    if (typeof v === 'string' && /^\s*\d+\s*$/.test(v) && isDimension(Number(v))) {
      this.quirks |= IMAGE_QUIRKS.sizeAsText;
      return Number(v);
    }
    this.keep(key, v, IMAGE_QUIRKS.invalidSize);
    return null;
  }

  /** One that leads out of the image folder is that sample's problem: its image is refused, the file is read. */
  private fileName(e: JsonObject): string {
    const name = this.requireString(e, 'file_name');
    if (!isSafeRelativeName(name)) this.quirks |= IMAGE_QUIRKS.fileNameOutsideFolder;
    return name;
  }

  private requireId(e: JsonObject, key: string): number {
    const v = e[key];
    if (v === undefined) throw this.invalid(`"${key}" is missing`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw this.invalid(`"${key}" must be an integer, found ${describe(v)}`);
    }
    return v;
  }

  private requireString(e: JsonObject, key: string): string {
    const v = e[key];
    if (v === undefined) throw this.invalid(`"${key}" is missing`);
    if (typeof v !== 'string' || v === '') throw this.invalid(`"${key}" must be a non-empty string, found ${describe(v)}`);
    return v;
  }

  /**
   * Geometry decides: a box that is not four numbers is INVALID_COCO. NaN and Infinity (json.dump
   * writes them; JSON.stringify writes NaN as null) make no box: it is stored as none and flagged,
   * so that it is counted and stays out of every statistic.
   */
  private optionalBbox(e: JsonObject): AnnotationRecord['bbox'] {
    const v = e.bbox;
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number' || x === null)) {
      throw this.invalid(`"bbox" must be [x, y, width, height] of numbers, found ${describe(v)}`);
    }
    if (v.every(Number.isFinite)) return v as [number, number, number, number];
    this.quirks |= ANNOTATION_QUIRKS.bboxNotFinite;
    return null;
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

function extraKeys(e: JsonObject, known: Set<string>): Record<string, unknown> | null {
  let extra: Record<string, unknown> | null = null;
  for (const k in e) {
    if (!known.has(k)) (extra ??= {})[k] = e[k];
  }
  return extra;
}

/** The text of an informational value for a text column: strings as they are, other values as JSON. */
function text(v: Json | undefined): string | null {
  if (absent(v)) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** `info` is handed out as an object: any other value is kept under "value". */
function toInfo(v: Json): Record<string, unknown> {
  return isObject(v) ? v : { value: v };
}

/** Absent, null, or NaN / Infinity (which no informational field can hold). */
function absent(v: Json | undefined): boolean {
  return v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v));
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isNumber = (v: Json): v is number => typeof v === 'number';
const isInt32 = (v: Json): v is number => typeof v === 'number' && Number.isInteger(v) && v >= -2_147_483_648 && v <= 2_147_483_647;
const isDimension = (v: Json): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 2_147_483_647;

function describe(v: Json | undefined): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}
