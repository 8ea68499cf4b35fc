import { between, intBetween, mulberry32, type Rng } from './rng.js';
import { type Bbox, type Category, drawShape, type Shape } from './shapes.js';

// Every random number is drawn here, in order (render's noise grows from a seed drawn here), so the
// images can be rendered in any order.

/** Ids have gaps on purpose, like COCO's 1..90 for 80 classes, so users see ids are kept. */
const CATEGORIES: readonly Category[] = [
  { id: 1, name: 'square', supercategory: 'quadrilateral' },
  { id: 2, name: 'rectangle', supercategory: 'quadrilateral' },
  { id: 4, name: 'diamond', supercategory: 'quadrilateral' },
  { id: 5, name: 'circle', supercategory: 'round' },
  { id: 6, name: 'ellipse', supercategory: 'round' },
  { id: 8, name: 'triangle', supercategory: 'polygon' },
  { id: 9, name: 'hexagon', supercategory: 'polygon' },
  { id: 11, name: 'star', supercategory: 'polygon' },
];

const SIZES: readonly (readonly [number, number])[] = [
  [640, 480],
  [640, 480],
  [480, 640],
  [800, 600],
  [512, 512],
];

const PALETTE = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#9a6324', '#000075'];
const BACKGROUNDS = ['#d9d4c7', '#b8c4cc', '#c9d6bd', '#e0cfc1', '#9fa8a3', '#cfc8dc', '#e8e2d0', '#a9b7c6'];

/** Every 32nd image (from the 8th) is background only, ~3% as in COCO's negatives. */
const isEmptyImage = (index: number) => index % 32 === 7;
/** Every 120th image (from the 4th) holds one iscrowd=1 cluster with an RLE mask. */
const hasCrowd = (index: number) => index % 120 === 3;

interface AnnotationPlan extends Shape {
  id: number;
}

export interface ImagePlan {
  id: number;
  fileName: string;
  width: number;
  height: number;
  dateCaptured: string;
  backgroundFrom: string;
  backgroundTo: string;
  /** Gradient direction in degrees. */
  backgroundAngle: number;
  noiseSeed: number;
  annotations: AnnotationPlan[];
}

export interface DatasetPlan {
  images: ImagePlan[];
  annotationCount: number;
}

export function planDataset(seed: number, imageCount: number): DatasetPlan {
  const rng = mulberry32(seed);
  const images: ImagePlan[] = [];
  let imageId = 1000;
  let annotationId = 50_001;
  // A fixed start keeps the output reproducible; captures then drift forward by minutes to hours.
  let captured = Date.UTC(2024, 2, 4, 9, 0, 0);
  for (let index = 0; index < imageCount; index++) {
    if (index > 0) imageId += rng() < 0.2 ? intBetween(rng, 2, 6) : 1;
    captured += intBetween(rng, 30, 4 * 3600) * 1000;
    const size = SIZES[Math.floor(rng() * SIZES.length)]!;
    const [width, height] = size;
    const image: ImagePlan = {
      id: imageId,
      fileName: `demo_${String(index + 1).padStart(6, '0')}.jpg`,
      width,
      height,
      dateCaptured: new Date(captured).toISOString().slice(0, 19).replace('T', ' '),
      backgroundFrom: BACKGROUNDS[Math.floor(rng() * BACKGROUNDS.length)]!,
      backgroundTo: BACKGROUNDS[Math.floor(rng() * BACKGROUNDS.length)]!,
      backgroundAngle: Math.floor(rng() * 360),
      noiseSeed: Math.floor(rng() * 0x1_0000_0000),
      annotations: [],
    };
    if (!isEmptyImage(index)) {
      const placed: Bbox[] = [];
      if (hasCrowd(index)) {
        const crowd = planCrowd(rng, width, height, annotationId++);
        image.annotations.push(crowd);
        placed.push(crowd.bbox);
      }
      // 1–6 objects, fewer more likely, as in real photos.
      const wantedShapes = 1 + Math.floor(6 * rng() ** 1.5);
      for (let s = 0; s < wantedShapes; s++) {
        const shape = placeShape(rng, width, height, placed);
        if (!shape) continue;
        placed.push(shape.bbox);
        image.annotations.push({ ...shape, id: annotationId++ });
      }
    }
    images.push(image);
  }
  return { images, annotationCount: images.reduce((n, i) => n + i.annotations.length, 0) };
}

/** Draws random shapes until one fits inside the image without touching the others (or gives up). */
function placeShape(rng: Rng, width: number, height: number, placed: readonly Bbox[]): Shape | undefined {
  const margin = 4;
  const gap = 6;
  const minSide = Math.min(width, height);
  for (let attempt = 0; attempt < 25; attempt++) {
    const category = CATEGORIES[Math.floor(rng() * CATEGORIES.length)]!;
    const extent = between(rng, 0.1, 0.36) * minSide;
    const cx = between(rng, extent / 2, width - extent / 2);
    const cy = between(rng, extent / 2, height - extent / 2);
    const color = PALETTE[Math.floor(rng() * PALETTE.length)]!;
    const shape = drawShape(rng, category, cx, cy, extent, color);
    const [x, y, w, h] = shape.bbox;
    if (x < margin || y < margin || x + w > width - margin || y + h > height - margin) continue;
    const overlaps = placed.some(
      ([px, py, pw, ph]) => x < px + pw + gap && px < x + w + gap && y < py + ph + gap && py < y + h + gap,
    );
    if (!overlaps) return shape;
  }
  return undefined;
}

/**
 * A cluster of small dots annotated as one crowd region, like COCO's crowds of people. The mask is
 * rasterised here (a pixel belongs to a dot when its centre does), so counts, box and area describe
 * exactly the pixels the dots cover.
 */
function planCrowd(rng: Rng, width: number, height: number, id: number): AnnotationPlan {
  const regionW = Math.round(width * between(rng, 0.25, 0.35));
  const regionH = Math.round(height * between(rng, 0.18, 0.26));
  const left = intBetween(rng, 10, width - regionW - 10);
  const top = intBetween(rng, 10, height - regionH - 10);
  const dots: { x: number; y: number; r: number }[] = [];
  const count = intBetween(rng, 20, 32);
  for (let k = 0; k < count; k++) {
    const r = intBetween(rng, 5, 9);
    dots.push({ x: intBetween(rng, left + r, left + regionW - r), y: intBetween(rng, top + r, top + regionH - r), r });
  }
  const mask = new Uint8Array(width * height); // column-major, as COCO RLE counts are
  let minX = width;
  let minY = height;
  let maxX = -1;
  let maxY = -1;
  let area = 0;
  for (const { x, y, r } of dots) {
    for (let px = x - r; px < x + r; px++) {
      for (let py = y - r; py < y + r; py++) {
        const dx = px + 0.5 - x;
        const dy = py + 0.5 - y;
        if (dx * dx + dy * dy > r * r || mask[px * height + py]) continue;
        mask[px * height + py] = 1;
        area++;
        minX = Math.min(minX, px);
        maxX = Math.max(maxX, px);
        minY = Math.min(minY, py);
        maxY = Math.max(maxY, py);
      }
    }
  }
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (const bit of mask) {
    if (bit === current) {
      run++;
    } else {
      counts.push(run);
      current = bit;
      run = 1;
    }
  }
  counts.push(run);
  return {
    id,
    categoryId: CATEGORIES.find((c) => c.name === 'circle')!.id,
    bbox: [minX, minY, maxX - minX + 1, maxY - minY + 1],
    area,
    iscrowd: 1,
    segmentation: { counts, size: [height, width] },
    svg: dots.map(({ x, y, r }) => `<circle cx="${x}" cy="${y}" r="${r}"/>`).join(''),
    color: PALETTE[Math.floor(rng() * PALETTE.length)]!,
  };
}

/** COCO "instances" layout, `categories` last as in the files COCO publishes. */
export function serializeCoco(plan: DatasetPlan, { version, seed }: { version: number; seed: number }): string {
  const coco = {
    info: {
      description: `DataVisor demo dataset: synthetic shapes (generator v${version}, seed ${seed})`,
      version: String(version),
      year: 2024,
      contributor: 'DataVisor',
      date_created: '2024/03/04',
    },
    licenses: [{ id: 1, name: 'CC0 1.0 Universal', url: 'https://creativecommons.org/publicdomain/zero/1.0/' }],
    images: plan.images.map((i) => ({
      id: i.id,
      file_name: i.fileName,
      width: i.width,
      height: i.height,
      license: 1,
      date_captured: i.dateCaptured,
    })),
    annotations: plan.images.flatMap((i) =>
      i.annotations.map((a) => ({
        id: a.id,
        image_id: i.id,
        category_id: a.categoryId,
        bbox: a.bbox,
        area: a.area,
        iscrowd: a.iscrowd,
        segmentation: a.segmentation,
      })),
    ),
    categories: CATEGORIES.map((c) => ({ id: c.id, name: c.name, supercategory: c.supercategory })),
  };
  return `${JSON.stringify(coco)}\n`;
}
