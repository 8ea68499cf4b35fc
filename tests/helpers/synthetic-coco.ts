import fs from 'node:fs';
import { mulberry32 as rng } from '../../src/demo/rng.js';

/**
 * A COCO "instances" file shaped like train2017, written by the tests themselves (no images, no
 * dependencies), deterministic from a seed. For tests that need a file of some size (an ingest
 * long enough to cancel mid-way, more than one page of 200 samples) or the real file's shape at
 * scale; real exports are in tests/fixtures. What it copies from instances_train2017.json:
 *
 * - top-level keys in its order: info, licenses, images, annotations, categories (last);
 * - formatting: `"key": value` with a space after the colon and none after commas; floats as
 *   Python writes them (`17.0`, `420.5`, a polygon area at full precision);
 * - images with license, file_name (`000000391895.jpg`), coco_url, height, width, date_captured,
 *   flickr_url and id; ids unique, sparse and not in order;
 * - annotations grouped by category, not by image (image_id lookups are random access), 1–2
 *   polygons each (8–40 points); ~1% `iscrowd: 1` with an uncompressed RLE
 *   (`{"counts": [...], "size": [h, w]}`), listed last with ids 900100000000 + image_id, past 32 bits;
 * - ~1% of images without annotations; ~7 annotations per image on average;
 * - COCO's 80 categories with their ids 1..90 (not contiguous) and supercategories.
 */

export interface SyntheticCocoOptions {
  images: number;
  /** Any integer; the same seed and image count give the same bytes. Default 1. */
  seed?: number;
}

export interface SyntheticCocoCounts {
  images: number;
  annotations: number;
  categories: number;
}

const SUPERCATEGORIES: [string, [number, string][]][] = [
  ['person', [[1, 'person']]],
  ['vehicle', [[2, 'bicycle'], [3, 'car'], [4, 'motorcycle'], [5, 'airplane'], [6, 'bus'], [7, 'train'], [8, 'truck'], [9, 'boat']]],
  ['outdoor', [[10, 'traffic light'], [11, 'fire hydrant'], [13, 'stop sign'], [14, 'parking meter'], [15, 'bench']]],
  ['animal', [[16, 'bird'], [17, 'cat'], [18, 'dog'], [19, 'horse'], [20, 'sheep'], [21, 'cow'], [22, 'elephant'], [23, 'bear'], [24, 'zebra'], [25, 'giraffe']]],
  ['accessory', [[27, 'backpack'], [28, 'umbrella'], [31, 'handbag'], [32, 'tie'], [33, 'suitcase']]],
  ['sports', [[34, 'frisbee'], [35, 'skis'], [36, 'snowboard'], [37, 'sports ball'], [38, 'kite'], [39, 'baseball bat'], [40, 'baseball glove'], [41, 'skateboard'], [42, 'surfboard'], [43, 'tennis racket']]],
  ['kitchen', [[44, 'bottle'], [46, 'wine glass'], [47, 'cup'], [48, 'fork'], [49, 'knife'], [50, 'spoon'], [51, 'bowl']]],
  ['food', [[52, 'banana'], [53, 'apple'], [54, 'sandwich'], [55, 'orange'], [56, 'broccoli'], [57, 'carrot'], [58, 'hot dog'], [59, 'pizza'], [60, 'donut'], [61, 'cake']]],
  ['furniture', [[62, 'chair'], [63, 'couch'], [64, 'potted plant'], [65, 'bed'], [67, 'dining table'], [70, 'toilet']]],
  ['electronic', [[72, 'tv'], [73, 'laptop'], [74, 'mouse'], [75, 'remote'], [76, 'keyboard'], [77, 'cell phone']]],
  ['appliance', [[78, 'microwave'], [79, 'oven'], [80, 'toaster'], [81, 'sink'], [82, 'refrigerator']]],
  ['indoor', [[84, 'book'], [85, 'clock'], [86, 'vase'], [87, 'scissors'], [88, 'teddy bear'], [89, 'hair drier'], [90, 'toothbrush']]],
];
const CATEGORIES = SUPERCATEGORIES.flatMap(([supercategory, cats]) => cats.map(([id, name]) => ({ id, name, supercategory })));

const SIZES: readonly [number, number][] = [[640, 480], [640, 427], [480, 640], [427, 640], [500, 375], [612, 612], [640, 360], [375, 500]];

/** A coordinate as Python's json.dump writes round(x, 2): 510.66, 420.5, 17.0. */
function f2(x: number): string {
  const r = Math.round(x * 100) / 100;
  return Number.isInteger(r) ? `${r}.0` : String(r);
}

/** Python's repr of a float: integers keep their ".0". */
const py = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));

interface Image {
  id: number;
  width: number;
  height: number;
}

/** Writes the file (1 MiB writes) and returns its counts. */
export function writeSyntheticCoco(file: string, opts: SyntheticCocoOptions): SyntheticCocoCounts {
  const random = rng(opts.seed ?? 1);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  // Sparse ids, then shuffled: the file lists images in no particular order, as COCO does.
  const images: Image[] = [];
  let nextId = 9;
  for (let i = 0; i < opts.images; i++) {
    nextId += 1 + Math.floor(random() * 8);
    const [width, height] = pick(SIZES);
    images.push({ id: nextId, width, height });
  }
  for (let i = images.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [images[i], images[j]] = [images[j]!, images[i]!];
  }

  // Annotation texts by category (without their id, given when written), crowds apart.
  const byCategory = CATEGORIES.map(() => [] as string[]);
  const crowds: string[] = [];
  for (const image of images) {
    if (random() < 0.01) continue; // an image without annotations
    const count = Math.min(40, 1 + Math.floor(-Math.log(1 - random()) * 6.3));
    let crowd = false;
    for (let k = 0; k < count; k++) {
      // A third are people, the rest spread over the other categories, as in COCO.
      const c = random() < 0.33 ? 0 : 1 + Math.floor(random() * (CATEGORIES.length - 1));
      // At most one crowd per image: its id is made from the image's.
      if (!crowd && random() < 0.01) {
        crowd = true;
        crowds.push(crowdText(image, CATEGORIES[c]!.id, random));
      } else byCategory[c]!.push(polygonText(image, CATEGORIES[c]!.id, random));
    }
  }

  let id = 0;
  const out = fs.openSync(file, 'w');
  let buffer: string[] = [];
  let length = 0;
  const write = (s: string) => {
    buffer.push(s);
    length += s.length;
    if (length >= 1 << 20) flush();
  };
  const flush = () => {
    fs.writeSync(out, buffer.join(''));
    buffer = [];
    length = 0;
  };
  try {
    write('{"info": {"description": "Synthetic COCO-like dataset (DataVisor tests)","url": "http://cocodataset.org","version": "1.0","year": 2017,"contributor": "COCO Consortium","date_created": "2017/09/01"},');
    write('"licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/","id": 1,"name": "Attribution-NonCommercial-ShareAlike License"},{"url": "http://creativecommons.org/licenses/by/2.0/","id": 4,"name": "Attribution License"}],');
    write('"images": [');
    images.forEach((im, i) => {
      const name = `${String(im.id).padStart(12, '0')}.jpg`;
      const day = 1 + (im.id % 28);
      write(
        `${i ? ',' : ''}{"license": ${im.id % 3 ? 1 : 4},"file_name": "${name}","coco_url": "http://images.cocodataset.org/train2017/${name}",` +
          `"height": ${im.height},"width": ${im.width},"date_captured": "2013-11-${String(day).padStart(2, '0')} 12:${String(im.id % 60).padStart(2, '0')}:00",` +
          `"flickr_url": "http://farm${1 + (im.id % 9)}.staticflickr.com/${im.id}.jpg","id": ${im.id}}`,
      );
    });
    write('],"annotations": [');
    for (const list of byCategory) for (const text of list) write(`${id ? ',' : ''}${text}"id": ${++id}}`);
    for (const text of crowds) write(`${id++ ? ',' : ''}${text}`);
    write('],"categories": [');
    CATEGORIES.forEach((c, i) => write(`${i ? ',' : ''}{"supercategory": ${JSON.stringify(c.supercategory)},"id": ${c.id},"name": ${JSON.stringify(c.name)}}`));
    write(']}');
    flush();
  } finally {
    fs.closeSync(out);
  }
  return { images: images.length, annotations: id, categories: CATEGORIES.length };
}

/** One annotation with 1–2 polygons inside the image, up to (not including) its id. */
function polygonText(image: Image, categoryId: number, random: () => number): string {
  const w = Math.max(4, random() * image.width * 0.6);
  const h = Math.max(4, random() * image.height * 0.6);
  const x = random() * (image.width - w);
  const y = random() * (image.height - h);
  const polygons: string[] = [];
  let area = 0;
  for (let p = random() < 0.15 ? 2 : 1; p > 0; p--) {
    const n = 8 + Math.floor(random() * 33);
    const points: number[] = [];
    for (let k = 0; k < n; k++) {
      const angle = (2 * Math.PI * k) / n;
      const r = 0.6 + 0.4 * random();
      points.push(Math.round((x + w / 2 + (Math.cos(angle) * r * w) / 2) * 100) / 100, Math.round((y + h / 2 + (Math.sin(angle) * r * h) / 2) * 100) / 100);
    }
    let twice = 0; // shoelace
    for (let k = 0; k < n; k++) {
      const [x1, y1, x2, y2] = [points[2 * k]!, points[2 * k + 1]!, points[(2 * k + 2) % (2 * n)]!, points[(2 * k + 3) % (2 * n)]!];
      twice += x1 * y2 - x2 * y1;
    }
    area += Math.abs(twice) / 2;
    polygons.push(`[${points.map(f2).join(',')}]`);
  }
  return `{"segmentation": [${polygons.join(',')}],"area": ${py(area)},"iscrowd": 0,"image_id": ${image.id},"bbox": [${[x, y, w, h].map(f2).join(',')}],"category_id": ${categoryId},`;
}

/** A complete crowd annotation: an uncompressed RLE over the whole image, id 900100000000 + image id. */
function crowdText(image: Image, categoryId: number, random: () => number): string {
  const total = image.width * image.height;
  const counts: number[] = [];
  let left = total;
  for (let k = 0; k < 12 && left > 0; k++) {
    const run = Math.min(left, 1 + Math.floor(random() * (total / 8)));
    counts.push(run);
    left -= run;
  }
  if (left > 0) counts.push(left);
  // Odd runs are the mask (RLE starts with background); they spread over the whole image.
  const area = counts.filter((_, k) => k % 2 === 1).reduce((a, b) => a + b, 0);
  return (
    `{"segmentation": {"counts": [${counts.join(',')}],"size": [${image.height},${image.width}]},"area": ${area},"iscrowd": 1,` +
    `"image_id": ${image.id},"bbox": [0.0,0.0,${f2(image.width)},${f2(image.height)}],` +
    `"category_id": ${categoryId},"id": ${900100000000 + image.id}}`
  );
}
