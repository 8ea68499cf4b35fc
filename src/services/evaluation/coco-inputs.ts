import { rleArea, rleFromBbox, rleFromCounts, rleFromPolygons, rleFromString, rleToBbox, type Rle } from './mask.js';
import type { EvalDetection, EvalGroundTruth, IouType } from './types.js';

/** COCO's three mask forms: polygons, uncompressed RLE (counts list), compressed RLE (string). */
export type CocoSegmentation =
  | readonly (readonly number[])[]
  | { readonly size: readonly number[]; readonly counts: readonly number[] | string };

export interface CocoImageSize {
  height: number;
  width: number;
}

export interface CocoAnnotation {
  id: number;
  category_id: number;
  bbox?: readonly number[];
  area?: number;
  iscrowd?: number | boolean;
  ignore?: number | boolean;
  segmentation?: CocoSegmentation;
}

export interface CocoResult {
  category_id: number;
  score: number;
  bbox?: readonly number[];
  segmentation?: CocoSegmentation;
}

/** Where loadRes takes every result's area from: decided by the results file's first entry. */
export type ResultAreaSource = 'bbox' | 'mask';

function isPolygons(s: CocoSegmentation): s is readonly (readonly number[])[] {
  return Array.isArray(s);
}

/**
 * pycocotools' annToRLE: polygons rasterised at the image's size and OR-ed, an uncompressed counts list
 * or a compressed string taken at the size it states. (pycocotools raises on a polygon list whose
 * first polygon has exactly 4 numbers, taking it for boxes; it is rasterised as a polygon here.)
 */
export function segmentationToRle(segmentation: CocoSegmentation, image: CocoImageSize): Rle {
  if (isPolygons(segmentation)) return rleFromPolygons(segmentation, image.height, image.width);
  const [h, w] = segmentation.size as [number, number];
  const { counts } = segmentation;
  return typeof counts === 'string' ? rleFromString(counts, h, w) : rleFromCounts(counts, h, w);
}

/**
 * A GT annotation as COCOeval reads it: `area`, `bbox` and `iscrowd` as given (segm: the mask from
 * annToRLE). `ignore` is passed on but, as in pycocotools, has no effect.
 */
export function groundTruthFromCoco(ann: CocoAnnotation, iouType: IouType, image: CocoImageSize): EvalGroundTruth {
  if (typeof ann.area !== 'number') throw new Error(`GT annotation ${ann.id} has no numeric area`);
  const { id, category_id: categoryId, area, ignore } = ann;
  const iscrowd = ann.iscrowd ?? 0;
  if (iouType === 'bbox') {
    if (!ann.bbox) throw new Error(`GT annotation ${ann.id} has no bbox`);
    return { id, categoryId, bbox: ann.bbox, area, iscrowd, ignore };
  }
  if (!ann.segmentation) throw new Error(`GT annotation ${ann.id} has no segmentation (needed for segm)`);
  const rle = segmentationToRle(ann.segmentation, image);
  // segm never reads a GT's box; the mask's box stands in when it is missing.
  return { id, categoryId, bbox: ann.bbox ?? rleToBbox(rle), area, iscrowd, ignore, rle };
}

/** loadRes's rule: a non-empty `bbox` on the first result means every area is box w·h, even for segm. */
export function resultAreaSource(first: CocoResult): ResultAreaSource {
  if (first.bbox && first.bbox.length > 0) return 'bbox';
  if (first.segmentation) return 'mask';
  throw new Error('the first result has neither a bbox nor a segmentation');
}

/**
 * One results entry as loadRes leaves it. Area source 'bbox': area = w·h of its own box, and for segm
 * a result without mask gets its box as polygon. Area source 'mask': area = mask pixels, box from the
 * mask when none is given. `index` is the entry's position in the results file. Results' own `area`,
 * `iscrowd` and `id` are ignored, as pycocotools overwrites them. (loadRes only accepts compressed
 * RLE under 'mask'; polygons and counts lists are converted here too.)
 */
export function detectionFromCoco(
  result: CocoResult,
  index: number,
  iouType: IouType,
  areaSource: ResultAreaSource,
  image: CocoImageSize,
): EvalDetection {
  const { category_id: categoryId, score } = result;
  if (areaSource === 'bbox') {
    const { bbox } = result;
    if (!bbox || bbox.length !== 4) {
      throw new Error(`result #${index} has no [x, y, w, h] bbox although the first result has one`);
    }
    const area = bbox[2]! * bbox[3]!;
    if (iouType === 'bbox') return { index, categoryId, score, bbox, area };
    const rle = result.segmentation
      ? segmentationToRle(result.segmentation, image)
      : rleFromBbox(bbox, image.height, image.width);
    return { index, categoryId, score, bbox, area, rle };
  }
  if (!result.segmentation) throw new Error(`result #${index} has no segmentation although the first result has no bbox`);
  const mask = segmentationToRle(result.segmentation, image);
  const bbox = result.bbox ?? rleToBbox(mask);
  const area = rleArea(mask);
  return iouType === 'segm' ? { index, categoryId, score, bbox, area, rle: mask } : { index, categoryId, score, bbox, area };
}
