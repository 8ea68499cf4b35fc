import fs from 'node:fs';
import { imageSize } from 'image-size';
import { DataVisorError } from '../../../errors.js';
import type { ObjectStore } from '../../../storage/index.js';

/**
 * The two reads the YOLO reader makes per image: its header (for its size) and its label file.
 * Local files are read with one open, one read into a reused buffer and one close, which is most
 * of what reading many small files costs; bucket objects through their store (a ranged GET for a
 * header).
 */

/** Enough for the header of most JPEGs; EXIF or ICC blocks push some further (COCO: up to 128 KiB). */
const HEAD_BYTES = 16 * 1024;
/** Later attempts, when the header was not within the bytes read. */
const MORE_HEAD_BYTES = [512 * 1024, 8 * 1024 * 1024];
/** Label files larger than this are refused (a label file is a few hundred bytes). */
const MAX_LABEL_BYTES = 64 * 1024 * 1024;

export interface ImageSize {
  width: number;
  height: number;
}

export type HeaderResult = { size: ImageSize; bytes: number } | { size: null; reason: string; bytes: number };

// fs's callback API wrapped one call at a time: FileHandle's promises cost more per small file
// than the reads themselves when the page cache has the file.
const open = (file: string) => new Promise<number>((resolve, reject) => fs.open(file, 'r', (e, fd) => (e ? reject(e) : resolve(fd))));
const read = (fd: number, buf: Buffer, at: number, length: number, position: number) =>
  new Promise<number>((resolve, reject) => fs.read(fd, buf, at, length, position, (e, n) => (e ? reject(e) : resolve(n))));
const sizeOfFd = (fd: number) => new Promise<number>((resolve, reject) => fs.fstat(fd, (e, st) => (e ? reject(e) : resolve(st.size))));
const close = (fd: number) => new Promise<void>((resolve) => fs.close(fd, () => resolve()));

const spare: Buffer[] = [];
const takeBuffer = () => spare.pop() ?? Buffer.allocUnsafe(HEAD_BYTES);
const giveBack = (b: Buffer) => {
  if (spare.length < 256) spare.push(b);
};

/** The size an image is shown at: EXIF orientations 5-8 turn it a quarter (as Ultralytics and sharp's rotate() do). */
function sizeOf(data: Uint8Array): ImageSize {
  const s = imageSize(data);
  if (!s.width || !s.height) throw new Error('no size in the header');
  return s.orientation !== undefined && s.orientation >= 5 ? { width: s.height, height: s.width } : { width: s.width, height: s.height };
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function readHeaderLocal(file: string): Promise<HeaderResult> {
  let fd: number;
  try {
    fd = await open(file);
  } catch (e) {
    return { size: null, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : reasonOf(e), bytes: 0 };
  }
  const buf = takeBuffer();
  let bytes = 0;
  try {
    const bytesRead = await read(fd, buf, 0, HEAD_BYTES, 0);
    bytes = bytesRead;
    let firstError: unknown;
    try {
      return { size: sizeOf(buf.subarray(0, bytesRead)), bytes };
    } catch (e) {
      firstError = e;
    }
    if (bytesRead < HEAD_BYTES) return { size: null, reason: reasonOf(firstError), bytes };
    const total = await sizeOfFd(fd);
    let lastError = firstError;
    for (const n of MORE_HEAD_BYTES) {
      const want = Math.min(n, total);
      const more = Buffer.allocUnsafe(want);
      const got = await read(fd, more, 0, want, 0);
      bytes += got;
      try {
        return { size: sizeOf(more.subarray(0, got)), bytes };
      } catch (e) {
        lastError = e;
      }
      if (want === total) break;
    }
    return { size: null, reason: reasonOf(lastError), bytes };
  } catch (e) {
    return { size: null, reason: reasonOf(e), bytes };
  } finally {
    giveBack(buf);
    await close(fd);
  }
}

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
export async function readLabelLocal(file: string): Promise<string | null> {
  let fd: number;
  try {
    fd = await open(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
  const buf = takeBuffer();
  try {
    const bytesRead = await read(fd, buf, 0, HEAD_BYTES, 0);
    if (bytesRead < HEAD_BYTES) return buf.toString('utf8', 0, bytesRead);
    const size = await sizeOfFd(fd);
    if (size > MAX_LABEL_BYTES) throw new DataVisorError('PAYLOAD_TOO_LARGE', `label file ${file} is larger than ${MAX_LABEL_BYTES / 1024 / 1024} MiB`);
    const all = Buffer.allocUnsafe(size);
    buf.copy(all, 0, 0, bytesRead);
    let at = bytesRead;
    while (at < size) {
      const got = await read(fd, all, at, size - at, at);
      if (got === 0) break;
      at += got;
    }
    return all.toString('utf8', 0, at);
  } finally {
    giveBack(buf);
    await close(fd);
  }
}

export async function readLabelStore(store: ObjectStore, key: string): Promise<string | null> {
  try {
    return (await store.readAll(key, { maxBytes: MAX_LABEL_BYTES })).toString('utf8');
  } catch (e) {
    if (e instanceof DataVisorError && e.code === 'FILE_NOT_FOUND') return null;
    throw e;
  }
}
