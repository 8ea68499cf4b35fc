import type { CocoAnnotation, CocoCategory, CocoImage, CocoLicense, CocoSection, SegmentationKind } from './types.js';

/**
 * What the parse worker sends to the main thread. Annotations travel as columns (one
 * Float64Array for every number, transferred without a copy) because structured-cloning
 * 860K objects would cost more than parsing them; the few images and categories travel as objects.
 */
export const ANN_FIELDS = [
  'id', 'imageId', 'categoryId', 'x', 'y', 'w', 'h', 'area', 'score', 'numKeypoints', 'polygonCount', 'pointCount', 'isCrowd', 'kind',
] as const;
export const ANN_STRIDE = ANN_FIELDS.length;
export const A = Object.fromEntries(ANN_FIELDS.map((f, i) => [f, i])) as Record<(typeof ANN_FIELDS)[number], number>;

const KINDS: SegmentationKind[] = ['none', 'polygon', 'rle', 'compressed_rle'];
export const kindCode = (k: SegmentationKind): number => KINDS.indexOf(k);
export const kindName = (code: number): SegmentationKind => KINDS[code] ?? 'none';

/**
 * Many short strings as one: structured-cloning 4,096 separate strings costs more than parsing
 * them (it was 2.3 s of a 450 MB file), cloning one long string is a copy. Row i is
 * `text.slice(ends[i - 1] ?? 0, ends[i])`, or null where `nulls[i]` is 1.
 */
export interface TextColumn {
  text: string;
  ends: Int32Array;
  nulls: Uint8Array;
}

export class TextColumnBuilder {
  private text = '';
  private readonly ends: Int32Array;
  private readonly nulls: Uint8Array;
  private n = 0;

  constructor(capacity: number) {
    this.ends = new Int32Array(capacity);
    this.nulls = new Uint8Array(capacity);
  }

  push(s: string | null): void {
    if (s === null) this.nulls[this.n] = 1;
    else this.text += s;
    this.ends[this.n++] = this.text.length;
  }

  build(): TextColumn {
    return { text: this.text, ends: this.ends.subarray(0, this.n), nulls: this.nulls.subarray(0, this.n) };
  }
}

export function textAt(c: TextColumn, i: number): string | null {
  return c.nulls[i] === 1 ? null : c.text.slice(i === 0 ? 0 : c.ends[i - 1], c.ends[i]);
}

export interface AnnotationColumns {
  count: number;
  /** count × ANN_STRIDE numbers; NaN stands for null. */
  nums: Float64Array;
  segmentation: TextColumn;
  keypoints: TextColumn;
  /** Extra keys as JSON text. */
  extra: TextColumn;
}

export interface AnnotationColumnsBuilder {
  count: number;
  nums: Float64Array;
  segmentation: TextColumnBuilder;
  keypoints: TextColumnBuilder;
  extra: TextColumnBuilder;
}

export type ParseEvent =
  | { kind: 'section'; name: CocoSection }
  | { kind: 'info'; info: Record<string, unknown> }
  | { kind: 'licenses'; licenses: CocoLicense[] }
  | { kind: 'images'; images: CocoImage[] }
  | { kind: 'annotations'; columns: AnnotationColumns }
  | { kind: 'categories'; categories: CocoCategory[] };

export type WorkerRequest = { type: 'chunk'; data: Uint8Array } | { type: 'end' };
export type WorkerResponse =
  | { type: 'batch'; bytesRead: number; events: ParseEvent[] }
  | { type: 'done'; bytesRead: number; nonStandardNumbers: number; events: ParseEvent[] }
  | { type: 'error'; code: string; message: string };

export function newAnnotationColumns(capacity: number): AnnotationColumnsBuilder {
  return {
    count: 0,
    nums: new Float64Array(capacity * ANN_STRIDE),
    segmentation: new TextColumnBuilder(capacity),
    keypoints: new TextColumnBuilder(capacity),
    extra: new TextColumnBuilder(capacity),
  };
}

export function buildAnnotationColumns(b: AnnotationColumnsBuilder): AnnotationColumns {
  return {
    count: b.count,
    nums: b.nums.subarray(0, b.count * ANN_STRIDE),
    segmentation: b.segmentation.build(),
    keypoints: b.keypoints.build(),
    extra: b.extra.build(),
  };
}

/** The buffers a batch can hand over without a copy. */
export function transferList(c: AnnotationColumns): ArrayBuffer[] {
  return [c.nums, c.segmentation.ends, c.segmentation.nulls, c.keypoints.ends, c.keypoints.nulls, c.extra.ends, c.extra.nulls].map(
    (a) => a.buffer as ArrayBuffer,
  );
}

export function pushAnnotation(c: AnnotationColumnsBuilder, a: CocoAnnotation): void {
  const o = c.count * ANN_STRIDE;
  const n = c.nums;
  n[o] = a.id;
  n[o + 1] = a.imageId;
  n[o + 2] = a.categoryId;
  const b = a.bbox;
  n[o + 3] = b ? b[0] : NaN;
  n[o + 4] = b ? b[1] : NaN;
  n[o + 5] = b ? b[2] : NaN;
  n[o + 6] = b ? b[3] : NaN;
  n[o + 7] = a.area ?? NaN;
  n[o + 8] = a.score ?? NaN;
  n[o + 9] = a.numKeypoints ?? NaN;
  n[o + 10] = a.polygonCount;
  n[o + 11] = a.pointCount;
  n[o + 12] = a.isCrowd ? 1 : 0;
  n[o + 13] = kindCode(a.segmentationKind);
  c.segmentation.push(a.segmentation);
  c.keypoints.push(a.keypoints);
  c.extra.push(a.extra ? JSON.stringify(a.extra) : null);
  c.count++;
}

export type { CocoCategory, CocoImage, CocoLicense };
