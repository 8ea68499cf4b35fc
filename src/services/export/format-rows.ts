import type { ColumnTable } from '../db/connection.js';
import { annotationJson, imageJson, numberText, resultJson } from './coco-json.js';

/** Which rows a chunk holds: images or annotations of a COCO dataset, or detections of a results file. */
export type RowKind = 'images' | 'annotations' | 'results';

const FORMATS: Record<RowKind, (r: Record<string, unknown>) => string> = { images: imageJson, annotations: annotationJson, results: resultJson };

/**
 * A chunk of rows (whole columns) as the file's text, one JSON object a line; `first`: the
 * section's first chunk (no separator before it). The common ground-truth annotation is written
 * straight from the columns; every other row is handed to coco-json.ts as the object it reads
 * (NaN numbers as null), one object reused for every row.
 */
export function formatChunk(kind: RowKind, t: ColumnTable, first: boolean): string {
  const toJson = FORMATS[kind];
  const numbers = Object.entries(t.numbers);
  const texts = Object.entries(t.texts);
  const row: Record<string, unknown> = {};
  const plain = kind === 'annotations' ? plainAnnotations(t) : null;
  let out = '';
  for (let i = 0; i < t.count; i++) {
    let text = plain?.(i) ?? null;
    if (text === null) {
      for (const [name, values] of numbers) {
        const v = values[i]!;
        row[name] = v !== v ? null : v;
      }
      for (const [name, values] of texts) row[name] = values[i];
      text = toJson(row);
    }
    out += i === 0 && first ? text : `,\n${text}`;
  }
  return out;
}

/**
 * The common ground-truth annotation (a box and an area, no shape, keypoints, score or extra keys)
 * straight from the columns, the text annotationJson writes for it; null for any other row.
 */
function plainAnnotations(t: ColumnTable): (i: number) => string | null {
  const n = t.numbers;
  const [id, image, category, x, y, w, h, area, crowd, keypointCount, score] = [
    n.annotation_id!, n.image_id!, n.category_id!, n.bbox_x!, n.bbox_y!, n.bbox_w!, n.bbox_h!, n.area!, n.is_crowd!, n.num_keypoints!, n.score!,
  ];
  const { extra, segmentation } = t.texts;
  return (i) => {
    const a = area[i]!;
    const bx = x[i]!;
    if (extra![i] !== null || segmentation![i] !== null || keypointCount[i] === keypointCount[i] || score[i] === score[i] || bx !== bx || a !== a) return null;
    return `{"id":${id[i]!},"image_id":${image[i]!},"category_id":${category[i]!},"bbox":[${numberText(bx)},${numberText(y[i]!)},${numberText(w[i]!)},${numberText(h[i]!)}],"area":${numberText(a)},"iscrowd":${crowd[i] ? 1 : 0},"segmentation":[]}`;
  };
}
