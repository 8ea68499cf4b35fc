import { I, IMG_TEXT, newAnnotationColumns, newImageColumns, type ColumnBuffers, type Columns, type ColumnsBuilder } from '../../../records/columns.js';
import { readLabelText, type LabelContext } from './label-lines.js';
import { WarningTally, type TallyEntry } from './warnings.js';

/** What turning images and their label files into records needs to know (plain data: it crosses to the read thread). */
export interface RecordSettings {
  classIds: number[];
  kptShape: [number, number] | null;
  keepShapes: boolean;
  /** The image folder's key: file names are relative to it. */
  rootKey: string;
  /** Label files are named relative to this folder in warnings. */
  labelBase: string;
}

/** One batch of rows, with what its images and lines gave rise to. */
export interface RecordBatch {
  images: Columns;
  /** Annotation ids are numbered from 0 within the batch: the reader adds the count of the batches before, plus 1. */
  annotations: Columns;
  tally: TallyEntry[];
  unknownClassIds: number[];
}

/**
 * Image and annotation rows of one batch at a time. Images are numbered from the batch's first id;
 * annotations from 0 within the batch, since batches built by different read threads only learn
 * their place once the batches before them are counted. Warnings are kept per batch too, so that
 * merged in batch order their examples are the dataset's first.
 */
export class RecordBuilder {
  private tally = new WarningTally();
  private readonly ctx: LabelContext;
  private nextImageId = 0;
  private nextAnnotationId = 0;
  private imgs: ColumnsBuilder;
  private anns: ColumnsBuilder;

  constructor(private readonly settings: RecordSettings) {
    this.ctx = {
      classIds: new Set(settings.classIds), kptShape: settings.kptShape, keepShapes: settings.keepShapes, tally: this.tally, unknownClassIds: new Set(),
    };
    this.imgs = newImageColumns();
    this.anns = newAnnotationColumns();
  }

  /** Starts a batch whose first image has id `firstImageId`. */
  begin(firstImageId: number): void {
    this.nextImageId = firstImageId;
    this.nextAnnotationId = 0;
  }

  get pending(): number {
    return this.imgs.count;
  }

  /** One image: its size from its header (NaN and a `reason` when unreadable) and its label text (null: none). */
  add(key: string, split: string | null, width: number, height: number, reason: string | null, labelKey: string | null, label: string | null): void {
    const imageId = this.nextImageId++;
    const fileName = relativeKey(this.settings.rootKey, key);
    const sized = reason === null;
    if (!sized) this.tally.add('image_headers_unreadable', `${fileName} (${reason})`);
    const imgs = this.imgs;
    const o = imgs.row();
    const n = imgs.nums;
    n[o + I.id] = imageId;
    n[o + I.width] = sized ? width : NaN;
    n[o + I.height] = sized ? height : NaN;
    n[o + I.license] = NaN;
    imgs.text(IMG_TEXT.fileName, fileName);
    imgs.text(IMG_TEXT.cocoUrl, null);
    imgs.text(IMG_TEXT.flickrUrl, null);
    imgs.text(IMG_TEXT.dateCaptured, null);
    imgs.text(IMG_TEXT.extra, null);
    imgs.text(IMG_TEXT.split, split);
    if (label !== null && labelKey !== null) {
      const text = label.charCodeAt(0) === 0xfeff ? label.slice(1) : label;
      const where = relativeKey(this.settings.labelBase, labelKey);
      this.nextAnnotationId += readLabelText(text, where, imageId, sized ? width : null, sized ? height : null, this.nextAnnotationId, this.anns, this.ctx);
    }
  }

  /**
   * The rows added since the last batch. `reuse`: arrays of batches the consumer is done with,
   * refilled instead of allocating new ones.
   */
  take(reuse?: { images?: ColumnBuffers; annotations?: ColumnBuffers }): RecordBatch {
    const batch: RecordBatch = {
      images: this.imgs.build(), annotations: this.anns.build(), tally: this.tally.entries(), unknownClassIds: [...this.ctx.unknownClassIds],
    };
    this.imgs = newImageColumns(reuse?.images);
    this.anns = newAnnotationColumns(reuse?.annotations);
    this.tally = this.ctx.tally = new WarningTally();
    this.ctx.unknownClassIds = new Set();
    return batch;
  }
}

/** `key` relative to the folder `base` (a path or a bucket key); as it is when outside it. */
export function relativeKey(base: string, key: string): string {
  if (base === '') return key;
  if (base === '/') return key.slice(1);
  return key.startsWith(`${base}/`) ? key.slice(base.length + 1) : key;
}
