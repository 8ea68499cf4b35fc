import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * A small COCO file made to exercise every sort and filter: mixed-case and non-ASCII file names,
 * images without a size, nested metadata (unknown image keys become the sample's metadata), ties,
 * thin and wide boxes, crowd objects, and a prediction run that leaves some images without a
 * prediction. Everything the tests expect is computed from these objects in JS.
 */
export interface ShopImage {
  id: number;
  file_name: string;
  width?: number;
  height?: number;
  camera?: { iso: number; model: string };
  tags?: string[];
  night?: boolean;
}
export interface ShopAnnotation { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number }
export interface ShopResult { image_id: number; category_id: number; bbox: number[]; score: number }

const NAMES = ['b.jpg', 'A.jpg', 'a.JPG', 'c-1.png', 'C_2.PNG', 'a.jpg.bak', 'sub/y.jpg', 'ß.jpg', 'z10.jpg', 'z9.jpg', 'Night_01.jpg', 'night_02.JPG'];

/** `sized`: every image has a size (an evaluation needs them); else every fifth has none. */
export function shopCoco({ sized = false } = {}) {
  const images: ShopImage[] = Array.from({ length: 36 }, (_, i) => {
    const img: ShopImage = { id: 500 - i * 7, file_name: `${Math.floor(i / NAMES.length)}_${NAMES[i % NAMES.length]!}`.replace(/^0_/, '') };
    if (sized || i % 5 !== 0) {
      img.width = 100 + ((i * 37) % 7) * 10;
      img.height = 60 + ((i * 11) % 4) * 20;
    }
    if (i % 6 !== 0) img.camera = { iso: [100, 200, 400][i % 3]!, model: i % 2 ? 'X' : 'Y' };
    if (i % 4 !== 1) img.tags = i % 4 === 0 ? ['indoor', 'blurry'] : ['outdoor'];
    if (i % 3 === 0) img.night = i % 2 === 0;
    return img;
  });
  const annotations: ShopAnnotation[] = [];
  images.forEach((img, i) => {
    for (let k = 0; k < (i * 5) % 4; k++) {
      const w = 4 + ((i + k * 3) % 9) * 3;
      const h = 2 + ((i * 2 + k) % 5) * 4;
      annotations.push({ id: annotations.length + 1, image_id: img.id, category_id: 1 + ((i + k) % 3), bbox: [k, k, w, h], area: w * h * 0.8, iscrowd: (i + k) % 7 === 0 ? 1 : 0 });
    }
  });
  const categories = [{ id: 1, name: 'shelf' }, { id: 2, name: 'cart' }, { id: 3, name: 'person' }];
  // The run: every object found (score by image), one false positive on every other image, none on every third.
  const results: ShopResult[] = [];
  images.forEach((img, i) => {
    if (i % 3 === 0) return;
    for (const a of annotations.filter((x) => x.image_id === img.id && x.iscrowd === 0)) {
      results.push({ image_id: img.id, category_id: a.category_id, bbox: a.bbox, score: Math.round(((0.3 + 0.07 * i + 0.01 * a.id) % 1) * 1000) / 1000 });
    }
    if (i % 2 === 0) results.push({ image_id: img.id, category_id: 2, bbox: [50, 40, 10, 10], score: Math.round((0.05 + 0.02 * i) * 1000) / 1000 });
  });
  return { images, annotations, categories, results };
}

/** Writes the file and the results into `dir`; answers their paths. */
export async function writeShop(dir: string, options: { sized?: boolean } = {}) {
  const { images, annotations, categories, results } = shopCoco(options);
  await fs.mkdir(dir, { recursive: true });
  const coco = path.join(dir, 'shop.json');
  const preds = path.join(dir, 'shop-results.json');
  await fs.writeFile(coco, JSON.stringify({ images, annotations, categories }));
  await fs.writeFile(preds, JSON.stringify(results));
  return { coco, preds };
}

/** List order of a sort: the key ascending or descending, samples without a key last, ties by ord. */
export function expectedOrder(n: number, key: (ord: number) => string | number | null, descending: boolean): number[] {
  return [...Array(n).keys()].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka === null || kb === null) return ka === kb ? a - b : ka === null ? 1 : -1;
    const c = typeof ka === 'string' ? Buffer.compare(Buffer.from(ka), Buffer.from(kb as string)) : ka - (kb as number);
    return (descending ? -c : c) || a - b;
  });
}
