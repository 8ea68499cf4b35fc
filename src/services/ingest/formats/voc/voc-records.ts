import type { VocBox } from './voc-xml.js';

/**
 * VOC values → record values.
 *
 * Boxes: the VOC devkit gives `<bndbox>` as pixel indices, 1-based and inclusive: (1, 1) is the
 * top-left pixel and `xmin=1, xmax=W` spans the whole width. In the continuous coordinates COCO's
 * `[x, y, w, h]` uses, pixel i (1-based) covers [i - 1, i), so the box covers
 * [xmin - 1, xmax) × [ymin - 1, ymax):
 *
 *   x = xmin - 1, y = ymin - 1, w = xmax - xmin + 1, h = ymax - ymin + 1
 *
 * This is detectron2's conversion (pascal_voc.py: "xmin=1, xmax=W covers the whole image",
 * subtracting 1 from xmin and ymin only), and the devkit's own evaluation (VOCevaldet.m) measures
 * widths as `xmax - xmin + 1`, so an IoU of two stored boxes is the devkit's IoU. mmdetection
 * subtracts 1 from all four (w = xmax - xmin) and FiftyOne/albumentations take x = xmin,
 * w = xmax - xmin; both lose a pixel of every box against the devkit (docs/formats.md).
 */
export function toCocoBox(b: VocBox | null): [number, number, number, number] | null {
  if (!b) return null;
  const xmin = coordinate(b.xmin);
  const ymin = coordinate(b.ymin);
  const xmax = coordinate(b.xmax);
  const ymax = coordinate(b.ymax);
  if (xmin === null || ymin === null || xmax === null || ymax === null) return null;
  return [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1];
}

/** How a box is drawn wrong in the file's own coordinates: `zero` (xmax = xmin or ymax = ymin), `inverted` (xmax < xmin or ymax < ymin). */
export function boxFault(b: VocBox | null): 'zero' | 'inverted' | null {
  if (!b) return null;
  const [xmin, ymin, xmax, ymax] = [coordinate(b.xmin), coordinate(b.ymin), coordinate(b.xmax), coordinate(b.ymax)];
  if (xmin === null || ymin === null || xmax === null || ymax === null) return null;
  if (xmax < xmin || ymax < ymin) return 'inverted';
  if (xmax === xmin || ymax === ymin) return 'zero';
  return null;
}

/** A coordinate: a finite number (VOC writes integers; some tools write decimals), else null. */
function coordinate(text: string | null): number | null {
  if (text === null || text === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** `<size>`'s width or height: a positive integer, else null (then the image header is read). */
export function dimension(text: string | null): number | null {
  if (text === null || text === '') return null;
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/**
 * An object's attribute as stored: `0`/`1` and `true`/`false` as booleans (difficult, truncated,
 * occluded), other numbers as numbers, other text (pose: `Unspecified`, `Left`…) as it is.
 */
export function attribute(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const t = value.toLowerCase();
  if (t === '0' || t === 'false') return false;
  if (t === '1' || t === 'true') return true;
  if (value !== '' && Number.isFinite(Number(value))) return Number(value);
  return value;
}

/** A number for text that is one (depth, segmented), else the text. */
export function numberOrText(value: unknown): unknown {
  return typeof value === 'string' && value !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
}
