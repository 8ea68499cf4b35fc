/**
 * IoU of every detection box with every GT box, boxes flat [x, y, w, h, x, y, w, h, …], written
 * row-major [d * G + g] into `out`, in cocoapi's bbIou operation order: an algebraically equal but
 * differently ordered formula rounds differently and flips matches that sit exactly on a threshold.
 * For a crowd GT the intersection is divided by the detection's area.
 */
export function boxIou(
  dts: ArrayLike<number>,
  gts: ArrayLike<number>,
  iscrowd: ArrayLike<number | boolean>,
  out: Float64Array = new Float64Array((dts.length / 4) * (gts.length / 4)),
): Float64Array {
  const D = dts.length / 4;
  const G = gts.length / 4;
  for (let g = 0; g < G; g++) {
    const gx = gts[4 * g]!;
    const gy = gts[4 * g + 1]!;
    const gw = gts[4 * g + 2]!;
    const gh = gts[4 * g + 3]!;
    const ga = gw * gh;
    const crowd = Boolean(iscrowd[g]);
    for (let d = 0; d < D; d++) {
      const dx = dts[4 * d]!;
      const dy = dts[4 * d + 1]!;
      const dw = dts[4 * d + 2]!;
      const dh = dts[4 * d + 3]!;
      const at = d * G + g;
      out[at] = 0;
      const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (w <= 0) continue;
      const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
      if (h <= 0) continue;
      const i = w * h;
      const da = dw * dh;
      out[at] = i / (crowd ? da : da + ga - i);
    }
  }
  return out;
}
