import sharp from 'sharp';
import type { InputLocation } from '../../../storage/index.js';
import { imageKey } from '../../../storage/location.js';
import { resolveImageFile } from '../../../storage/paths.js';

/** Bytes of a bucket image fetched for its header: JPEG, PNG and WebP state their size well before this. */
const HEAD_BYTES = 256 * 1024;

/**
 * An image's pixel size from its header, never decoding it (libvips reads only the header for
 * `metadata()`): a local file is opened by sharp itself; from a bucket the first 256 KiB are
 * fetched, and the whole object (at most `maxBytes`) only when those do not hold the header.
 * null when the file cannot be read or is not an image: the sample is then `images_without_size`.
 */
export async function readImageSize(images: InputLocation, fileName: string, maxBytes: number): Promise<{ width: number; height: number } | null> {
  try {
    if (images.location.kind === 'local') {
      // Refuses a name or symlink leading out of the folder, as serving the image would.
      return sizeOf(await sharp(await resolveImageFile(images.key, fileName, [images.key]), { limitInputPixels: false }).metadata());
    }
    const key = imageKey(images.location, fileName);
    const head = await collect(await images.store.openRead(key, { start: 0, end: HEAD_BYTES - 1 }));
    try {
      return sizeOf(await sharp(head, { limitInputPixels: false }).metadata());
    } catch {
      if (head.byteLength < HEAD_BYTES) return null;
      return sizeOf(await sharp(await images.store.readAll(key, { maxBytes }), { limitInputPixels: false }).metadata());
    }
  } catch {
    return null;
  }
}

function sizeOf(m: { width?: number; height?: number }): { width: number; height: number } | null {
  return m.width && m.height ? { width: m.width, height: m.height } : null;
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return Buffer.concat(parts);
}
