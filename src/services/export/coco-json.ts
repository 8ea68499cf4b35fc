import type { Row } from '../db/connection.js';

/**
 * Stored rows → COCO JSON text, one object at a time (docs/formats.md, "Export"). Numbers are
 * written as JavaScript's own number-to-text writes them (template literals use it, as String(n)
 * does; boxes and areas through numberText, the same text faster): the shortest text that parses
 * back to the same double, so boxes and areas round-trip exactly. Ids are
 * written as stored. A field the row lacks (no box, no size, no license) is left out rather than
 * written as null. Keys the file had that COCO does not define come back from the row's extra JSON;
 * a key kept there because its value did not fit the column (a text `area`) wins over the column,
 * so the file's own value is written once.
 */

type Extra = Record<string, unknown> | null;

/** The fraction digits of m / 10,000 (1 ≤ m < 10,000) without trailing zeros: "5" for 5000, "0001" for 1. */
const FRACTIONS = Array.from({ length: 10_000 }, (_, m) => String(m).padStart(4, '0').replace(/0+$/, ''));

/**
 * `${x}` (String(x): the shortest text that parses back to x), faster for the numbers boxes and
 * areas mostly are: x ≥ 0 below 9e10 that is the double of a decimal with at most 4 fraction
 * digits. Below 9e10 two such decimals are never the same double, so that decimal, trailing zeros
 * cut, is the shortest text of x, as String gives it (tests/export/number-text.test.ts). A quarter
 * of String's time; anything else goes to String.
 */
export function numberText(x: number): string {
  const r = Math.round(x * 10_000);
  if (r / 10_000 !== x || r < 0 || r > 9e14) return `${x}`;
  const whole = Math.floor(r / 10_000);
  const m = r - whole * 10_000;
  return m === 0 ? `${whole}` : `${whole}.${FRACTIONS[m]!}`;
}

const parse = (text: unknown): Extra => (typeof text === 'string' ? (JSON.parse(text) as Extra) : null);

/** `,"key":value` for each key of `extra`. */
function extraFields(extra: Extra): string {
  if (extra === null) return '';
  let out = '';
  for (const k in extra) out += `,${JSON.stringify(k)}:${JSON.stringify(extra[k])}`;
  return out;
}

const str = (v: unknown) => JSON.stringify(v as string);

const box = (r: Row) => `${numberText(r.bbox_x as number)},${numberText(r.bbox_y as number)},${numberText(r.bbox_w as number)},${numberText(r.bbox_h as number)}`;

export function imageJson(r: Row): string {
  const x = parse(r.metadata);
  const own = (k: string) => x === null || !(k in x);
  let out = `{"id":${r.image_id as number},"file_name":${str(r.file_name)}`;
  if (r.width !== null && own('width')) out += `,"width":${r.width as number}`;
  if (r.height !== null && own('height')) out += `,"height":${r.height as number}`;
  if (r.license_id !== null && own('license')) out += `,"license":${r.license_id as number}`;
  if (r.coco_url !== null && own('coco_url')) out += `,"coco_url":${str(r.coco_url)}`;
  if (r.date_captured !== null && own('date_captured')) out += `,"date_captured":${str(r.date_captured)}`;
  if (r.flickr_url !== null && own('flickr_url')) out += `,"flickr_url":${str(r.flickr_url)}`;
  return `${out}${extraFields(x)}}`;
}

/**
 * A ground-truth annotation. `segmentation` is the stored polygons or RLE; without one (boxes only,
 * or shapes not stored at ingest: the export's warning counts those) it is `[]`, as box-only COCO
 * exports write it. `keypoints` only when stored. (The common row, a box and nothing else, is
 * written straight from the columns by format-rows.ts, the same text.)
 */
export function annotationJson(r: Row): string {
  const x = parse(r.extra);
  const own = (k: string) => x === null || !(k in x);
  let out = `{"id":${r.annotation_id as number},"image_id":${r.image_id as number},"category_id":${r.category_id as number}`;
  if (r.bbox_x !== null && own('bbox')) out += `,"bbox":[${box(r)}]`;
  if (r.area !== null && own('area')) out += `,"area":${numberText(r.area as number)}`;
  if (own('iscrowd')) out += `,"iscrowd":${r.is_crowd ? 1 : 0}`;
  if (own('segmentation')) out += `,"segmentation":${(r.segmentation as string | null) ?? '[]'}`;
  if (r.num_keypoints !== null && own('num_keypoints')) out += `,"num_keypoints":${r.num_keypoints as number}`;
  if (r.keypoints !== null && own('keypoints')) out += `,"keypoints":${r.keypoints as string}`;
  if (r.score !== null && own('score')) out += `,"score":${r.score as number}`;
  return `${out}${extraFields(x)}}`;
}

/** A detection of a results file, as pycocotools' loadRes reads it. */
export function resultJson(r: Row): string {
  let out = `{"image_id":${r.image_id as number},"category_id":${r.category_id as number}`;
  if (r.bbox_x !== null) out += `,"bbox":[${box(r)}]`;
  out += `,"score":${r.score as number}`;
  if (r.segmentation !== null) out += `,"segmentation":${r.segmentation as string}`;
  return `${out}}`;
}

export function categoryJson(r: Row): string {
  const x = parse(r.extra);
  let out = `{"id":${r.category_id as number},"name":${str(r.name)}`;
  if (r.supercategory !== null && (x === null || !('supercategory' in x))) out += `,"supercategory":${str(r.supercategory)}`;
  return `${out}${extraFields(x)}}`;
}

export function licenseJson(r: Row): string {
  let out = `{"id":${r.license_id as number}`;
  if (r.name !== null) out += `,"name":${str(r.name)}`;
  if (r.url !== null) out += `,"url":${str(r.url)}`;
  return `${out}}`;
}
