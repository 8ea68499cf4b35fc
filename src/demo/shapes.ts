import { between, type Rng } from './rng.js';

export type ShapeName = 'square' | 'rectangle' | 'diamond' | 'circle' | 'ellipse' | 'triangle' | 'hexagon' | 'star';

export interface Category {
  id: number;
  name: ShapeName;
  supercategory: string;
}

export type Bbox = [number, number, number, number];

export interface Rle {
  counts: number[];
  size: [number, number];
}

/** One object of an image: its annotation (all but the id) and how to draw it. */
export interface Shape {
  categoryId: number;
  bbox: Bbox;
  area: number;
  iscrowd: 0 | 1;
  segmentation: number[][] | Rle;
  /** SVG elements drawing the object, without fill: the renderer wraps them in a filled group. */
  svg: string;
  color: string;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const round2 = (v: number) => Math.round(v * 100) / 100;

/**
 * A `category` shape about `extent` across, centred on (cx, cy). The SVG draws the rounded
 * coordinates the annotation holds, so box, area and polygon describe what is drawn.
 */
export function drawShape(rng: Rng, category: Category, cx: number, cy: number, extent: number, color: string): Shape {
  switch (category.name) {
    case 'square': {
      const side = Math.round(extent);
      const x = Math.round(cx - side / 2);
      const y = Math.round(cy - side / 2);
      return polygonShape(category, [x, y, x + side, y, x + side, y + side, x, y + side], color);
    }
    case 'rectangle': {
      const long = extent;
      const short = extent * between(rng, 0.35, 0.7);
      const [w, h] = rng() < 0.5 ? [long, short] : [short, long];
      if (rng() < 0.5) {
        const x = Math.round(cx - w / 2);
        const y = Math.round(cy - h / 2);
        const rw = Math.round(w);
        const rh = Math.round(h);
        return polygonShape(category, [x, y, x + rw, y, x + rw, y + rh, x, y + rh], color);
      }
      const angle = (between(rng, 10, 35) * (rng() < 0.5 ? -1 : 1) * Math.PI) / 180;
      const corners = [
        [-w / 2, -h / 2],
        [w / 2, -h / 2],
        [w / 2, h / 2],
        [-w / 2, h / 2],
      ] as const;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      return polygonShape(
        category,
        corners.flatMap(([dx, dy]) => [round2(cx + dx * cos - dy * sin), round2(cy + dx * sin + dy * cos)]),
        color,
      );
    }
    case 'diamond': {
      const h = Math.round(extent);
      const w = Math.round(extent * between(rng, 0.55, 0.9));
      const x = Math.round(cx);
      const y = Math.round(cy);
      return polygonShape(category, [x, y - h / 2, x + w / 2, y, x, y + h / 2, x - w / 2, y], color);
    }
    case 'circle': {
      const r = round1(extent / 2);
      return ellipseShape(category, round1(cx), round1(cy), r, r, color);
    }
    case 'ellipse': {
      const a = round1(extent / 2);
      const b = round1((a * between(rng, 0.45, 0.75)));
      const [rx, ry] = rng() < 0.6 ? [a, b] : [b, a];
      return ellipseShape(category, round1(cx), round1(cy), rx, ry, color);
    }
    case 'triangle': {
      // Vertices roughly 120° apart keep every triangle well away from degenerate slivers.
      const start = rng() * 2 * Math.PI;
      const points: number[] = [];
      for (let k = 0; k < 3; k++) {
        const theta = start + (k * 2 * Math.PI) / 3 + between(rng, -0.35, 0.35);
        const radius = (extent / 2) * between(rng, 0.75, 1);
        points.push(round2(cx + radius * Math.cos(theta)), round2(cy + radius * Math.sin(theta)));
      }
      return polygonShape(category, points, color);
    }
    case 'hexagon':
      return polygonShape(category, regularPolygon(cx, cy, extent / 2, extent / 2, 6, rng() * Math.PI), color);
    case 'star':
      return polygonShape(
        category,
        regularPolygon(cx, cy, extent / 2, extent * 0.2, 10, -Math.PI / 2 + between(rng, -0.3, 0.3)),
        color,
      );
  }
}

/** Vertices alternate between `outer` and `inner` radius (equal radii give a regular polygon). */
function regularPolygon(cx: number, cy: number, outer: number, inner: number, n: number, start: number): number[] {
  const points: number[] = [];
  for (let k = 0; k < n; k++) {
    const radius = k % 2 === 0 ? outer : inner;
    const theta = start + (k * 2 * Math.PI) / n;
    points.push(round2(cx + radius * Math.cos(theta)), round2(cy + radius * Math.sin(theta)));
  }
  return points;
}

function polygonShape(category: Category, points: number[], color: string): Shape {
  return {
    categoryId: category.id,
    bbox: pointsBbox(points),
    area: round2(polygonArea(points)),
    iscrowd: 0,
    segmentation: [points],
    svg: `<polygon points="${points.join(' ')}"/>`,
    color,
  };
}

/**
 * The segmentation is a 32-gon whose vertices include the four extremes, so its box equals the
 * ellipse's box; the area is the true ellipse area, not the polygon's.
 */
function ellipseShape(category: Category, cx: number, cy: number, rx: number, ry: number, color: string): Shape {
  const points: number[] = [];
  for (let k = 0; k < 32; k++) {
    const theta = (k * Math.PI) / 16;
    points.push(round2(cx + rx * Math.cos(theta)), round2(cy + ry * Math.sin(theta)));
  }
  return {
    categoryId: category.id,
    bbox: pointsBbox(points),
    area: round2(Math.PI * rx * ry),
    iscrowd: 0,
    segmentation: [points],
    svg: `<ellipse cx="${cx}" cy="${cy}" rx="${rx}" ry="${ry}"/>`,
    color,
  };
}

function pointsBbox(points: readonly number[]): Bbox {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < points.length; i += 2) {
    const x = points[i]!;
    const y = points[i + 1]!;
    minX = Math.min(minX, x);
    maxX = Math.max(maxX, x);
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  return [minX, minY, round2(maxX - minX), round2(maxY - minY)];
}

/** Shoelace formula. */
function polygonArea(points: readonly number[]): number {
  let twice = 0;
  const n = points.length;
  for (let i = 0; i < n; i += 2) {
    const j = (i + 2) % n;
    twice += points[i]! * points[j + 1]! - points[j]! * points[i + 1]!;
  }
  return Math.abs(twice) / 2;
}
