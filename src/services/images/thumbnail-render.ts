import { stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { DataVisorError } from '../errors.js';

// libvips's operation cache keeps recent operations and their pixels (up to 50 MB, 100
// operations) for a repeat of the same one. Thumbnails have caches of their own (memory, then
// disk), so a source is decoded once and never asked for again in the same way: the cache only
// held decoded images nothing reused, and its bookkeeping (hashing, a lock shared by every decode)
// cost a sharp loop ~2% of its throughput (measured alternating, same process). The setting is
// the process's: the demo's image drawing and plugins that use this sharp run without it too.
sharp.cache(false);

/**
 * Part of every cache key: bump it whenever the pipeline below changes its output, so thumbnails
 * made by the old pipeline are no longer found instead of being served forever.
 */
export const RENDER_VERSION = 'webp-q80-rotate-v1';

export interface RenderOptions {
  width: number;
  maxInputPixels: number;
  /** Names the image in error messages (never a file-system path, which clients would see). */
  label: string;
}

export interface RenderedThumbnail {
  body: Buffer;
  width: number;
  height: number;
}

/**
 * Loads a source image (a local path or its bytes). A missing file becomes FILE_NOT_FOUND naming
 * only `label`; anything else (a bucket outage) is rethrown.
 */
export async function loadThumbnailSource(loadSource: () => Promise<string | Buffer>, label: string): Promise<string | Buffer> {
  try {
    return await loadSource();
  } catch (e) {
    if (isMissingFile(e)) throw new DataVisorError('FILE_NOT_FOUND', `Source image of ${label} does not exist`, { cause: e });
    throw e;
  }
}

/** Makes the WebP thumbnail of a source image. Every failure that is the image's fault becomes UNPROCESSABLE_IMAGE or FILE_NOT_FOUND. */
export async function renderThumbnail(source: string | Buffer, opts: RenderOptions): Promise<RenderedThumbnail> {
  try {
    const { data, info } = await sharp(source, {
      // 'warning' is the strictest level: a truncated file or corrupt scan data is refused instead
      // of rendering as grey blocks. Every JPEG of the COCO128 and RBC sample sets passes it.
      failOn: 'warning',
      // Checked against the header before any pixel is decoded, so a small file that claims to be
      // 20000×20000 never allocates its gigabytes.
      limitInputPixels: opts.maxInputPixels,
    })
      .rotate()
      .resize({ width: opts.width, withoutEnlargement: true })
      .webp({ quality: 80 })
      .toBuffer({ resolveWithObject: true });
    return { body: data, width: info.width, height: info.height };
  } catch (e) {
    throw await describeDecodeFailure(e, source, opts);
  }
}

async function describeDecodeFailure(
  e: unknown,
  source: string | Buffer,
  opts: RenderOptions,
): Promise<DataVisorError> {
  // sharp reports a missing file only as text ("Input file is missing"), so ask the file system.
  if (typeof source === 'string' && (await fileIsMissing(source))) {
    return new DataVisorError(
      'FILE_NOT_FOUND',
      `Image file ${JSON.stringify(path.basename(source))} of ${opts.label} does not exist`,
      { cause: e },
    );
  }
  const reason = e instanceof Error ? e.message : String(e);
  if (/pixel limit/i.test(reason)) {
    const size = await headerSize(source);
    return new DataVisorError(
      'UNPROCESSABLE_IMAGE',
      `Image of ${opts.label} is ${size ?? 'larger than allowed'}, above the limit of ` +
        `${opts.maxInputPixels} pixels; it is refused so it cannot exhaust memory`,
      { cause: e },
    );
  }
  const safeReason = typeof source === 'string' ? reason.split(source).join(path.basename(source)) : reason;
  return new DataVisorError('UNPROCESSABLE_IMAGE', `Image of ${opts.label} cannot be decoded: ${safeReason}`, {
    cause: e,
  });
}

async function headerSize(source: string | Buffer): Promise<string | undefined> {
  try {
    const { width, height } = await sharp(source, { limitInputPixels: false }).metadata();
    return `${width}×${height} (${width * height} pixels)`;
  } catch {
    // Only the message gets less precise; the image is refused either way.
    return undefined;
  }
}

async function fileIsMissing(file: string): Promise<boolean> {
  try {
    await stat(file);
    return false;
  } catch (e) {
    return isMissingFile(e);
  }
}

function isMissingFile(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}
