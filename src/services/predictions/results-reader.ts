import type { Token } from 'stream-json/parser.js';
import { isNonStandardNumber } from '../common/json-tokens.js';
import { DataVisorError } from '../errors.js';
import { newAnnotationColumns, pushAnnotation } from '../records/columns.js';
import type { AnnotationRecord } from '../records/types.js';
import { rleArea, rleToBbox, segmentationToRle, type CocoSegmentation, type Rle } from '../evaluation/index.js';

/**
 * A token-level reader of COCO results files: a JSON array of `{image_id, category_id, score,
 * bbox?, segmentation?}` as detectron2, mmdetection, Ultralytics, YOLOX and pycocotools' loadRes
 * write them, or a COCO dataset file whose annotations carry a score (its `annotations` array is
 * read the same way and every other key skipped). One element is held at a time; each becomes an
 * annotation record numbered by its position (`id` = position + 1, as pycocotools numbers
 * results; in a range of a split file, its position in the range). It runs in the threads of
 * parse-results.ts. Keys pycocotools overwrites or ignores (`id`, `area`, `iscrowd`, `category_name`…)
 * are skipped: they never fail an import.
 */

type Where = 'top' | 'skip' | 'list' | 'element' | 'bbox' | 'raw';

export class ResultsParser {
  /**
   * The next detection's position: in the file, or, for a range read in parallel with others, in
   * the range (an error there is never shown: the file is read again from that range's start).
   */
  count: number;
  firstHasBbox: boolean | null;
  nonFinite = 0;
  readonly nonFiniteExamples: number[] = [];
  /** The batch being filled; whoever takes it starts the next (ColumnsBuilder.build). */
  builder = newAnnotationColumns();
  private nonStandard = false;
  private depth = 0;
  /** Depth of the results array's elements: 1 in a results file, 2 in a dataset file's `annotations`. */
  private listDepth = 0;
  private sawList = false;
  private topKey: string | null = null;
  /** The key being read inside an element. */
  private key: string | null = null;
  private where: Where = 'top';
  /** Depth at which skipping or raw capture began. */
  private nestDepth = 0;
  private imageId: number | null = null;
  private categoryId: number | null = null;
  private score: number | null = null;
  private bbox: number[] | null = null;
  private badBox = false;
  private segText = '';
  /** Closing brackets of the values open in the segmentation, innermost last. */
  private segClose: string[] = [];
  private segComma = false;
  private segNumbers = 0;
  private segArraysAtTwo = 0;
  private segObject = false;
  private segStringCounts = false;

  /** Detections before the range this parser reads (0 at the file's start). */
  private readonly from: number;

  /** `resume`: the range starts after `count` detections of a file whose first detection's box decided `firstHasBbox`. */
  constructor(resume?: { count: number; firstHasBbox: boolean | null }) {
    this.from = this.count = resume?.count ?? 0;
    this.firstHasBbox = resume?.firstHasBbox ?? null;
  }

  /** Detections this parser read. */
  get read(): number {
    return this.count - this.from;
  }

  readonly expectNonStandard = () => {
    this.nonStandard = true;
  };

  /** `[12].score`, or `annotations[12].score` in a dataset file: where the reader is. */
  location(relation: 'in' | 'after' = 'in'): string {
    if (!this.sawList || this.where === 'top') return '';
    const path = `${this.listDepth === 2 ? 'annotations' : ''}[${this.count}]${this.key && relation === 'in' ? `.${this.key}` : ''}`;
    return ` (${relation === 'in' ? 'at' : 'after the start of'} ${path})`;
  }

  /**
   * True right after an element of a results file's array closed: where the parts of a file split
   * for parallel parsing meet (parse-results.ts).
   */
  get betweenResults(): boolean {
    return this.where === 'list' && this.listDepth === 1 && this.depth === 1 && this.read > 0;
  }

  finish(): void {
    if (this.depth !== 0) throw this.invalid('the file ends before the results array is closed');
    if (!this.sawList) throw this.invalid('a COCO dataset file without an "annotations" array holds no predictions');
  }

  readonly onTokens = (tokens: readonly Token[]): void => {
    for (const t of tokens) this.token(t);
  };

  private token(t: Token): void {
    const name = t.name;
    if (name === 'startObject' || name === 'startArray') return this.open(name === 'startObject');
    if (name === 'endObject' || name === 'endArray') return this.close();
    if (name === 'keyValue') return this.onKey(t.value as string);
    let v: number | string | boolean | null;
    if (name === 'numberValue') v = this.nonStandard && isNonStandardNumber(t.value as string) ? NaN : Number(t.value);
    else if (name === 'stringValue') v = t.value as string;
    else if (name === 'trueValue') v = true;
    else if (name === 'falseValue') v = false;
    else if (name === 'nullValue') v = null;
    else return;
    this.scalar(v, t.value as string);
  }

  private open(isObject: boolean): void {
    const depth = ++this.depth;
    switch (this.where) {
      case 'top':
        if (depth === 1) {
          // A results file, or a dataset file whose `annotations` are read as results.
          if (!isObject) this.enterList(1);
          return;
        }
        if (depth === 2 && this.topKey === 'annotations' && !isObject) return this.enterList(2);
        this.where = 'skip';
        this.nestDepth = depth;
        return;
      case 'list':
        if (!isObject) throw this.invalid(`each result must be an object, found an array`);
        this.where = 'element';
        this.key = null;
        this.imageId = this.categoryId = this.score = null;
        this.bbox = null;
        this.badBox = false;
        this.segText = '';
        return;
      case 'element':
        if (this.key === 'bbox' && !isObject) {
          this.where = 'bbox';
          this.bbox = [];
          return;
        }
        if (this.key === 'segmentation') {
          this.where = 'raw';
          this.nestDepth = depth;
          this.segText = isObject ? '{' : '[';
          this.segClose = [isObject ? '}' : ']'];
          this.segComma = false;
          this.segNumbers = this.segArraysAtTwo = 0;
          this.segObject = isObject;
          this.segStringCounts = false;
          return;
        }
        this.where = 'skip';
        this.nestDepth = depth;
        return;
      case 'bbox':
        throw this.invalid('"bbox" must be [x, y, width, height] of numbers, found a nested value');
      case 'raw':
        this.segText += (this.segComma ? ',' : '') + (isObject ? '{' : '[');
        this.segClose.push(isObject ? '}' : ']');
        this.segComma = false;
        if (depth === this.nestDepth + 1 && !isObject) this.segArraysAtTwo++;
        return;
      case 'skip':
        return;
    }
  }

  private close(): void {
    const depth = this.depth--;
    switch (this.where) {
      case 'skip':
        if (depth === this.nestDepth) this.where = this.nestDepth <= this.listDepth || this.listDepth === 0 ? 'top' : 'element';
        return;
      case 'raw':
        this.segText += this.segClose.pop();
        this.segComma = true;
        if (depth === this.nestDepth) this.where = 'element';
        return;
      case 'bbox':
        this.where = 'element';
        return;
      case 'element':
        this.endElement();
        this.where = 'list';
        return;
      case 'list':
        // The results array closed.
        this.where = 'top';
        return;
      case 'top':
        return;
    }
  }

  private onKey(k: string): void {
    if (this.where === 'top' && this.depth === 1) this.topKey = k;
    else if (this.where === 'element') this.key = k;
    else if (this.where === 'raw') {
      this.segText += `${this.segComma ? ',' : ''}${JSON.stringify(k)}:`;
      this.segComma = false;
    }
  }

  private scalar(v: number | string | boolean | null, text: string): void {
    switch (this.where) {
      case 'top':
        if (this.depth === 0) throw this.invalid('the file must hold a JSON array of results (or a COCO dataset file)');
        return;
      case 'list':
        throw this.invalid(`each result must be an object, found ${describe(v)}`);
      case 'bbox':
        if (typeof v !== 'number') throw this.invalid(`"bbox" must be [x, y, width, height] of numbers, found ${describe(v)} in it`);
        if (!Number.isFinite(v)) this.badBox = true;
        this.bbox!.push(v);
        return;
      case 'raw':
        if (this.segComma) this.segText += ',';
        if (typeof v === 'number') {
          this.segText += Number.isFinite(v) ? text : 'null';
          this.segNumbers++;
        } else {
          if (typeof v === 'string' && this.segText.endsWith('"counts":')) this.segStringCounts = true;
          this.segText += JSON.stringify(v);
        }
        this.segComma = true;
        return;
      case 'element':
        this.field(v);
        return;
      case 'skip':
        return;
    }
  }

  private field(v: number | string | boolean | null): void {
    switch (this.key) {
      case 'image_id':
        this.imageId = this.integer(v, 'image_id');
        return;
      case 'category_id':
        this.categoryId = this.integer(v, 'category_id');
        return;
      case 'score':
        if (typeof v !== 'number' || !Number.isFinite(v)) throw this.invalid(`"score" must be a finite number, found ${describe(v)}`);
        this.score = v;
        return;
      case 'bbox':
      case 'segmentation':
        if (v !== null) throw this.invalid(`"${this.key}" must be ${this.key === 'bbox' ? '[x, y, width, height]' : 'an RLE object or a list of polygons'}, found ${describe(v)}`);
        return;
      default:
        return;
    }
  }

  private integer(v: number | string | boolean | null, key: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw this.invalid(`"${key}" must be an integer, found ${describe(v)}`);
    return v;
  }

  private endElement(): void {
    const position = this.count;
    this.key = null;
    if (this.imageId === null) throw this.invalid('"image_id" is missing');
    if (this.categoryId === null) throw this.invalid('"category_id" is missing');
    if (this.score === null) throw this.invalid('"score" is missing: a result without a score cannot be ranked');
    let bbox: AnnotationRecord['bbox'] = null;
    if (this.bbox !== null && this.bbox.length > 0) {
      if (this.bbox.length !== 4) throw this.invalid(`"bbox" must be [x, y, width, height], found ${this.bbox.length} numbers`);
      if (this.badBox) {
        this.nonFinite++;
        if (this.nonFiniteExamples.length < 5) this.nonFiniteExamples.push(position - this.from);
      } else {
        bbox = this.bbox as [number, number, number, number];
      }
    }
    this.firstHasBbox ??= this.bbox !== null && this.bbox.length > 0;
    const seg = this.segText;
    let kind: AnnotationRecord['segmentationKind'] = 'none';
    if (seg !== '') kind = this.segObject ? (this.segStringCounts ? 'compressed_rle' : 'rle') : this.segNumbers > 0 ? 'polygon' : 'none';
    // pycocotools' loadRes, decided by the file's first result: with a box there, every area is
    // the box's w·h; without, every area is the mask's pixel count (and a missing box is the mask's).
    const isMask = kind === 'compressed_rle' || kind === 'rle';
    const mask = isMask && (bbox === null || !this.firstHasBbox) && !this.badBox ? this.mask(seg) : null;
    if (bbox === null && mask) bbox = rleToBbox(mask) as [number, number, number, number];
    const area = this.firstHasBbox ? (bbox ? bbox[2] * bbox[3] : null) : mask ? rleArea(mask) : null;
    pushAnnotation(this.builder, {
      id: position + 1,
      imageId: this.imageId,
      categoryId: this.categoryId,
      bbox,
      area,
      isCrowd: false,
      segmentationKind: kind,
      polygonCount: kind === 'polygon' ? this.segArraysAtTwo : 0,
      pointCount: kind === 'polygon' ? Math.floor(this.segNumbers / 2) : 0,
      segmentation: kind === 'none' ? null : seg,
      numKeypoints: null,
      keypoints: null,
      score: this.score,
      extra: null,
    });
    this.count++;
  }

  private mask(seg: string): Rle {
    const parsed = JSON.parse(seg) as { size?: unknown; counts?: unknown };
    const size = parsed.size;
    if (!Array.isArray(size) || size.length !== 2 || !size.every((n) => Number.isInteger(n) && n >= 0)) {
      throw this.invalid('an RLE "segmentation" needs "size": [height, width]');
    }
    try {
      return segmentationToRle(parsed as CocoSegmentation, { height: size[0] as number, width: size[1] as number });
    } catch (cause) {
      throw this.invalid(`the RLE "segmentation" cannot be decoded: ${(cause as Error).message}`);
    }
  }

  private enterList(depth: number): void {
    if (this.sawList) throw this.invalid('the file holds more than one results array');
    this.sawList = true;
    this.listDepth = depth;
    this.where = 'list';
  }

  private invalid(message: string): DataVisorError {
    return new DataVisorError('INVALID_RESULTS', `Invalid results file${this.location()}: ${message}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' && !Number.isFinite(v)) return 'NaN or Infinity';
  return `${typeof v} ${String(v)}`;
}
