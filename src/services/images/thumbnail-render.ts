import { stat } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
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

/**
 * A region of the original to render instead of the whole image (an object's crop): the box in
 * pixels of the original, grown by `pad` × its width and height on each side, clamped to the image.
 * `fault` is the code of a box that selects nothing: the client's (BAD_USER_INPUT) when it sent the
 * box, the data's (UNPROCESSABLE_IMAGE) when it is a stored annotation's.
 */
export interface CropSpec {
  box: { x: number; y: number; w: number; h: number };
  pad: number;
  fault: 'BAD_USER_INPUT' | 'UNPROCESSABLE_IMAGE';
}

/**
 * The pixels a crop takes from an image of `width` × `height`: whole pixels covering the padded
 * box, clamped to the image. An error names what is wrong with a box that covers no pixel.
 */
export function cropRegion(crop: CropSpec, width: number, height: number, label: string): { left: number; top: number; width: number; height: number } {
  const { x, y, w, h } = crop.box;
  const describe = `box [${x}, ${y}, ${w}, ${h}] of ${label}`;
  if (![x, y, w, h].every(Number.isFinite)) throw new DataVisorError(crop.fault, `The ${describe} is not four finite numbers`);
  if (w <= 0 || h <= 0) throw new DataVisorError(crop.fault, `The ${describe} has no area (width and height must be above 0)`);
  const left = Math.max(0, Math.floor(x - crop.pad * w));
  const top = Math.max(0, Math.floor(y - crop.pad * h));
  const right = Math.min(width, Math.ceil(x + w + crop.pad * w));
  const bottom = Math.min(height, Math.ceil(y + h + crop.pad * h));
  if (right <= left || bottom <= top) throw new DataVisorError(crop.fault, `The ${describe} lies outside its ${width}×${height} image`);
  return { left, top, width: right - left, height: bottom - top };
}

export interface RenderOptions {
  /** The output's width; with `crop`, the longer side of the output (small crops are enlarged to it). */
  width: number;
  crop?: CropSpec;
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
    const image = sharp(source, {
      // 'warning' is the strictest level: a truncated file or corrupt scan data is refused instead
      // of rendering as grey blocks. Every JPEG of the COCO128 and RBC sample sets passes it.
      failOn: 'warning',
      // Checked against the header before any pixel is decoded, so a small file that claims to be
      // 20000×20000 never allocates its gigabytes.
      limitInputPixels: opts.maxInputPixels,
    });
    let pipeline: Sharp;
    if (opts.crop) {
      // Boxes are in the stored pixels' frame, as COCO tools (pycocotools, PIL) read images: no
      // EXIF rotation. The header gives the size to clamp to without decoding a pixel.
      const { width = 0, height = 0 } = await image.metadata();
      const region = cropRegion(opts.crop, width, height, opts.label);
      pipeline = image.extract(region).resize({ width: opts.width, height: opts.width, fit: 'inside' });
    } else {
      pipeline = image.rotate().resize({ width: opts.width, withoutEnlargement: true });
    }
    const { data, info } = await pipeline.webp({ quality: 80 }).toBuffer({ resolveWithObject: true });
    return { body: data, width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof DataVisorError) throw e;
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
