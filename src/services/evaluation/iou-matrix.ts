import { boxIou } from './box-iou.js';
import { maskIou, type Rle } from './mask.js';
import type { EvalDetection, EvalGroundTruth, IouType } from './types.js';

/** The IoU of the evaluation's type between detections and GTs: boxes (bbIou) or masks (rleIou). */
export class IouMatrix {
  private dtBoxes: Float64Array = new Float64Array(64);
  private gtBoxes: Float64Array = new Float64Array(64);

  constructor(private readonly iouType: IouType) {}

  /** Row-major [d * gts.length + g]; `crowd[g]` set: intersection over the detection's area. */
  compute(
    dts: readonly EvalDetection[],
    gts: readonly EvalGroundTruth[],
    crowd: ArrayLike<number | boolean>,
    out?: Float64Array,
  ): Float64Array {
    if (this.iouType === 'segm') return maskIou(dts.map(requireRle), gts.map(requireRle), crowd, out);
    this.dtBoxes = flattenBoxes(dts, this.dtBoxes);
    this.gtBoxes = flattenBoxes(gts, this.gtBoxes);
    return boxIou(this.dtBoxes.subarray(0, 4 * dts.length), this.gtBoxes.subarray(0, 4 * gts.length), crowd, out);
  }
}

/** Boxes as flat [x, y, w, h, …] in `buffer`, or in a larger buffer when it is too small. */
function flattenBoxes(items: readonly { bbox: readonly number[] }[], buffer: Float64Array): Float64Array {
  const out = buffer.length >= 4 * items.length ? buffer : new Float64Array(Math.max(4 * items.length, 2 * buffer.length));
  for (let i = 0; i < items.length; i++) {
    const b = items[i]!.bbox;
    out[4 * i] = b[0]!;
    out[4 * i + 1] = b[1]!;
    out[4 * i + 2] = b[2]!;
    out[4 * i + 3] = b[3]!;
  }
  return out;
}

function requireRle(x: EvalGroundTruth | EvalDetection): Rle {
  if (!x.rle) {
    const what = 'id' in x ? `GT annotation ${x.id}` : `result #${x.index}`;
    throw new Error(`segm evaluation needs a mask (rle) for ${what}`);
  }
  return x.rle;
}
