import { imageSize } from 'image-size';
import { DataVisorError } from '../../../errors.js';
import type { ObjectStore } from '../../../storage/index.js';

/**
 * The two reads the YOLO reader makes per image: its header (for its size) and its label file.
 * Local files are read by the read thread (read-worker.ts); bucket objects here, through their
 * store (a ranged GET for a header).
 */

/** Enough for the header of most JPEGs; EXIF or ICC blocks push some further (COCO: up to 128 KiB). */
export const HEAD_BYTES = 16 * 1024;
/** Later attempts, when the header was not within the bytes read. */
export const MORE_HEAD_BYTES = [512 * 1024, 8 * 1024 * 1024];
/** Label files larger than this are refused (a label file is a few hundred bytes). */
export const MAX_LABEL_BYTES = 64 * 1024 * 1024;

export interface ImageSize {
  width: number;
  height: number;
}

export type HeaderResult = { size: ImageSize; bytes: number } | { size: null; reason: string; bytes: number };

/** The size an image is shown at: EXIF orientations 5-8 turn it a quarter (as Ultralytics and sharp's rotate() do). */
export function sizeOf(data: Uint8Array): ImageSize {
  const s = imageSize(data);
  if (!s.width || !s.height) throw new Error('no size in the header');
  return s.orientation !== undefined && s.orientation >= 5 ? { width: s.height, height: s.width } : { width: s.width, height: s.height };
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function readHeaderStore(store: ObjectStore, key: string): Promise<HeaderResult> {
  let bytes = 0;
  let lastError: unknown;
  for (const n of [HEAD_BYTES, ...MORE_HEAD_BYTES]) {
    let data: Buffer;
    try {
      data = await readRange(store, key, n);
    } catch (e) {
      if (e instanceof DataVisorError && e.code === 'FILE_NOT_FOUND') return { size: null, reason: 'the file does not exist', bytes };
      throw e;
    }
    bytes += data.byteLength;
    try {
      return { size: sizeOf(data), bytes };
    } catch (e) {
      lastError = e;
    }
    if (data.byteLength < n) break;
  }
  return { size: null, reason: reasonOf(lastError), bytes };
}

async function readRange(store: ObjectStore, key: string, n: number): Promise<Buffer> {
  const stream = await store.openRead(key, { start: 0, end: n - 1 });
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** A label file's text, or null when there is none. */
export async function readLabelStore(store: ObjectStore, key: string): Promise<string | null> {
  try {
    return (await store.readAll(key, { maxBytes: MAX_LABEL_BYTES })).toString('utf8');
  } catch (e) {
    if (e instanceof DataVisorError && e.code === 'FILE_NOT_FOUND') return null;
    throw e;
  }
}
