import { CocoEvaluator } from './coco-eval.js';
import {
  detectionFromCoco,
  groundTruthFromCoco,
  resultAreaSource,
  type CocoAnnotation,
  type CocoImageSize,
  type CocoResult,
} from './coco-inputs.js';
import type { EvaluationResult, ImageOutcome, IouType } from './types.js';

export interface CocoGroundTruthFile {
  images: readonly (CocoImageSize & { id: number })[];
  annotations: readonly (CocoAnnotation & { image_id: number })[];
  categories: readonly { id: number }[];
}

export interface EvaluateCocoOptions {
  iouType: IouType;
  /** Called with each image's outcome, in ascending image id order. */
  onImage?: (outcome: ImageOutcome) => void;
}

/**
 * COCOeval on an in-memory GT file and results list (as json.load gives them): groups both by image
 * and streams the images through a CocoEvaluator. For small files and tests; the server streams
 * its own rows into CocoEvaluator.
 */
export function evaluateCoco(
  gt: CocoGroundTruthFile,
  results: readonly (CocoResult & { image_id: number })[],
  options: EvaluateCocoOptions,
): EvaluationResult {
  const { iouType } = options;
  const images = new Map(gt.images.map((im) => [im.id, im]));
  const gtByImage = groupBy(gt.annotations, (a) => a.image_id);
  const resultsByImage = groupBy(
    results.map((_, index) => index),
    (index) => results[index]!.image_id,
  );
  for (const imageId of resultsByImage.keys()) {
    if (!images.has(imageId)) throw new Error(`results refer to image ${imageId}, which is not in the GT file`);
  }
  const areaSource = results.length > 0 ? resultAreaSource(results[0]!) : 'bbox';
  const evaluator = new CocoEvaluator({ iouType, categoryIds: gt.categories.map((c) => c.id) });
  for (const imageId of [...images.keys()].sort((a, b) => a - b)) {
    const anns = gtByImage.get(imageId) ?? [];
    const dets = resultsByImage.get(imageId) ?? [];
    if (anns.length === 0 && dets.length === 0) continue;
    const image = images.get(imageId)!;
    const outcome = evaluator.addImage(
      imageId,
      anns.map((a) => groundTruthFromCoco(a, iouType, image)),
      dets.map((index) => detectionFromCoco(results[index]!, index, iouType, areaSource, image)),
    );
    options.onImage?.(outcome);
  }
  return evaluator.finish();
}

function groupBy<T>(items: readonly T[], key: (item: T) => number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const k = key(item);
    let list = out.get(k);
    if (!list) out.set(k, (list = []));
    list.push(item);
  }
  return out;
}
