import type { AnnotationRecord, ImageRecord, SegmentationKind } from './types.js';

/**
 * Record batches: what readers hand the writer (and the COCO parse threads send the main thread).
 * Images and annotations travel as columns: the numbers of a batch in one Float64Array
 * (transferred, not copied) and each text field as one string. Structured-cloning objects or many small strings cost more than parsing them (2.3 s of
 * a 450 MB file went to cloning); a long string is one copy. Categories and licenses are few and
 * travel as objects.
 */

export const ANN_FIELDS = [
  'id', 'imageId', 'categoryId', 'x', 'y', 'w', 'h', 'area', 'score', 'numKeypoints', 'polygonCount', 'pointCount', 'isCrowd', 'kind', 'quirks',
] as const;
export const A = Object.fromEntries(ANN_FIELDS.map((f, i) => [f, i])) as Record<(typeof ANN_FIELDS)[number], number>;
/** Text columns of an annotation batch. */
export const ANN_TEXT = { segmentation: 0, keypoints: 1, extra: 2 } as const;

export const IMG_FIELDS = ['id', 'width', 'height', 'license', 'quirks'] as const;
export const I = Object.fromEntries(IMG_FIELDS.map((f, i) => [f, i])) as Record<(typeof IMG_FIELDS)[number], number>;
export const IMG_TEXT = { fileName: 0, cocoUrl: 1, flickrUrl: 2, dateCaptured: 3, extra: 4, split: 5 } as const;

/** Segmentation kinds by their code in the transferred columns (and in staged rows). */
export const SEGMENTATION_KINDS: readonly SegmentationKind[] = ['none', 'polygon', 'rle', 'compressed_rle'];
export const kindCode = (k: SegmentationKind): number => SEGMENTATION_KINDS.indexOf(k);

/** Row i is `text.slice(ends[i - 1] ?? 0, ends[i])`, or null where `nulls[i]` is 1. */
export interface TextColumn {
  text: string;
  ends: Int32Array;
  nulls: Uint8Array;
}

export interface Columns {
  count: number;
  stride: number;
  /** count × stride numbers (and possibly room for more rows after them); NaN stands for null. */
  nums: Float64Array;
  texts: TextColumn[];
}

export function textAt(c: TextColumn, i: number): string | null {
  return c.nulls[i] === 1 ? null : c.text.slice(i === 0 ? 0 : c.ends[i - 1], c.ends[i]);
}

/** The buffers a batch hands over without a copy. */
export function transferList(c: Columns): ArrayBuffer[] {
  return [c.nums.buffer as ArrayBuffer, ...c.texts.flatMap((t) => [t.ends.buffer as ArrayBuffer, t.nulls.buffer as ArrayBuffer])];
}

/** The typed arrays a batch is built in. They travel to the main thread and come back to be refilled. */
export interface ColumnBuffers {
  nums: Float64Array;
  ends: Int32Array[];
  nulls: Uint8Array[];
}

/** A consumed batch's arrays, to hand back to the thread that filled them. */
export function buffersOf(c: Columns): ColumnBuffers {
  return { nums: c.nums, ends: c.texts.map((t) => t.ends), nulls: c.texts.map((t) => t.nulls) };
}

/**
 * Builds one batch, in arrays handed back from an earlier batch when there are any. Batches are
 * small (one forwarded chunk of the file, ~100-500 rows), so new arrays start small and double:
 * a fixed large capacity meant allocating gigabytes per file.
 */
export class ColumnsBuilder {
  count = 0;
  nums: Float64Array;
  private texts: string[];
  private ends: Int32Array[];
  private nulls: Uint8Array[];
  private capacity: number;

  constructor(
    readonly stride: number,
    private readonly textCount: number,
    reuse?: ColumnBuffers,
  ) {
    if (reuse) {
      this.capacity = reuse.nums.length / stride;
      this.nums = reuse.nums;
      this.ends = reuse.ends;
      this.nulls = reuse.nulls;
      for (const n of this.nulls) n.fill(0);
    } else {
      this.capacity = 128;
      this.nums = new Float64Array(this.capacity * stride);
      this.ends = Array.from({ length: textCount }, () => new Int32Array(this.capacity));
      this.nulls = Array.from({ length: textCount }, () => new Uint8Array(this.capacity));
    }
    this.texts = Array.from({ length: textCount }, () => '');
  }

  /** Starts a row; returns its offset in `nums`. Texts of the row follow with `text()`. */
  row(): number {
    if (this.count === this.capacity) this.grow();
    return this.count++ * this.stride;
  }

  text(column: number, s: string | null): void {
    const i = this.count - 1;
    if (s === null) this.nulls[column]![i] = 1;
    else this.texts[column] += s;
    this.ends[column]![i] = this.texts[column]!.length;
  }

  /** The batch, in the builder's own arrays (rows past `count` are left over): build once, then drop the builder. */
  build(): Columns {
    return {
      count: this.count,
      stride: this.stride,
      nums: this.nums,
      texts: this.texts.map((text, c) => ({ text, ends: this.ends[c]!, nulls: this.nulls[c]! })),
    };
  }

  private grow(): void {
    this.capacity *= 2;
    const nums = new Float64Array(this.capacity * this.stride);
    nums.set(this.nums);
    this.nums = nums;
    for (let c = 0; c < this.textCount; c++) {
      const ends = new Int32Array(this.capacity);
      ends.set(this.ends[c]!);
      this.ends[c] = ends;
      const nulls = new Uint8Array(this.capacity);
      nulls.set(this.nulls[c]!);
      this.nulls[c] = nulls;
    }
  }
}

export const newAnnotationColumns = (reuse?: ColumnBuffers) => new ColumnsBuilder(ANN_FIELDS.length, 3, reuse);
export const newImageColumns = (reuse?: ColumnBuffers) => new ColumnsBuilder(IMG_FIELDS.length, 6, reuse);

export function pushAnnotation(c: ColumnsBuilder, a: AnnotationRecord): void {
  const o = c.row();
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
  n[o + 14] = a.quirks ?? 0;
  c.text(ANN_TEXT.segmentation, a.segmentation);
  c.text(ANN_TEXT.keypoints, a.keypoints);
  c.text(ANN_TEXT.extra, a.extra ? JSON.stringify(a.extra) : null);
}

export function pushImage(c: ColumnsBuilder, img: ImageRecord): void {
  const o = c.row();
  const n = c.nums;
  n[o] = img.id;
  n[o + 1] = img.width ?? NaN;
  n[o + 2] = img.height ?? NaN;
  n[o + 3] = img.license ?? NaN;
  n[o + 4] = img.quirks ?? 0;
  c.text(IMG_TEXT.fileName, img.fileName);
  c.text(IMG_TEXT.cocoUrl, img.cocoUrl);
  c.text(IMG_TEXT.flickrUrl, img.flickrUrl);
  c.text(IMG_TEXT.dateCaptured, img.dateCaptured);
  c.text(IMG_TEXT.extra, img.extra ? JSON.stringify(img.extra) : null);
  c.text(IMG_TEXT.split, img.split ?? null);
}

const nullable = (v: number) => (Number.isNaN(v) ? null : v);

/** Row i of an image batch as an object (for plugin hooks). */
export function imageAt(c: Columns, i: number): ImageRecord {
  const o = i * c.stride;
  const extra = textAt(c.texts[IMG_TEXT.extra]!, i);
  return {
    id: c.nums[o + I.id]!,
    fileName: textAt(c.texts[IMG_TEXT.fileName]!, i)!,
    width: nullable(c.nums[o + I.width]!),
    height: nullable(c.nums[o + I.height]!),
    license: nullable(c.nums[o + I.license]!),
    cocoUrl: textAt(c.texts[IMG_TEXT.cocoUrl]!, i),
    flickrUrl: textAt(c.texts[IMG_TEXT.flickrUrl]!, i),
    dateCaptured: textAt(c.texts[IMG_TEXT.dateCaptured]!, i),
    split: textAt(c.texts[IMG_TEXT.split]!, i),
    extra: extra === null ? null : (JSON.parse(extra) as Record<string, unknown>),
    quirks: c.nums[o + I.quirks]!,
  };
}
