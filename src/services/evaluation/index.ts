// The evaluation engine's public surface: the streaming evaluator, the COCO input rules
// (loadRes / annToRLE), an in-memory driver, and the RLE mask toolkit.
export { CocoEvaluator, type CocoEvaluatorOptions } from './coco-eval.js';
export {
  detectionFromCoco,
  groundTruthFromCoco,
  resultAreaSource,
  segmentationToRle,
  type CocoAnnotation,
  type CocoImageSize,
  type CocoResult,
  type CocoSegmentation,
  type ResultAreaSource,
} from './coco-inputs.js';
export { evaluateCoco, type CocoGroundTruthFile, type EvaluateCocoOptions } from './evaluate-coco.js';
export * from './mask.js';
export { IOU_THRESHOLDS, RECALL_THRESHOLDS } from './params.js';
export type * from './types.js';
