import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import YAML from 'yaml';
import type { Row, Snapshot } from '../db/connection.js';
import { exportCategoryRows, yoloRowsQuery, type ExportSelection } from '../db/export.js';
import type { Dataset } from '../datasets/datasets.js';
import { BadInputError, isDataVisorError } from '../errors.js';
import { isBucketUrl, type StorageService } from '../storage/index.js';

/**
 * An Ultralytics YOLO folder of a dataset or a filtered view (docs/formats.md, "Export"):
 *
 *   data.yaml            names: the exported categories in id order (class i = the i-th); no `path`,
 *                        so the YAML's folder is the root, as Ultralytics and our reader take it
 *   images/<split>/      a symlink to each original (or a copy: `copy`; from a bucket, copies only)
 *   labels/<split>/      `class cx cy w h` per box, normalised by the image's size, numbers as
 *                        JavaScript writes doubles; an empty file for an image without boxes
 *
 * Splits are the samples' own (`valid`/`validation` become `val`, none `train`). Files keep their
 * base name (freeName: another name only when two images of a split share it), so no `images`
 * folder inside a file_name moves Ultralytics' label lookup. Left out, and counted: crowd
 * regions (Ultralytics' own COCO converter drops them), annotations without a box, boxes of images
 * without a size, and images whose file is missing. Polygons are not written (boxes only).
 */
export interface YoloExportOptions {
  out: string;
  /** Copy the originals instead of linking them (required for datasets in a bucket). */
  copy: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface YoloExportSummary {
  images: number;
  boxes: number;
  warnings: string[];
}

const SPLIT_KEYS: Record<string, string> = { valid: 'val', validation: 'val' };

export async function writeYolo(
  snapshot: Snapshot,
  deps: { storage: StorageService },
  dataset: Dataset,
  selection: ExportSelection,
  total: number,
  options: YoloExportOptions,
): Promise<YoloExportSummary> {
  const out = path.resolve(options.out);
  if (fs.existsSync(out)) throw new BadInputError(`--out: ${out} exists; name a folder that does not exist yet (the export creates it)`);
  if (!fs.existsSync(path.dirname(out))) throw new BadInputError(`--out: the folder ${path.dirname(out)} does not exist; create it first`);
  const inBucket = isBucketUrl(dataset.imageDir);
  if (inBucket && !options.copy) {
    throw new BadInputError(`the images of dataset ${dataset.id} are in a bucket (${dataset.imageDir}): links cannot point there; add --copy to download them into the export`);
  }
  // Built beside the target and renamed when complete: a failed export leaves no half folder.
  const temp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
  await fsp.mkdir(temp);
  try {
    const categories = await exportCategoryRows(snapshot, selection.datasetId, selection.categoryIds);
    const classOf = new Map(categories.map((c, i) => [c.category_id as number, i]));
    const skipped = { crowd: 0, noBox: 0, noSize: 0, missing: 0 };
    const splits = new Set<string>();
    let images = 0;
    let boxes = 0;
    let done = 0;
    let current: { sampleOrd: number; split: string; stem: string; lines: string[]; width: number | null; height: number | null } | null = null;

    const flush = async () => {
      if (!current) return;
      await fsp.writeFile(path.join(temp, 'labels', current.split, `${current.stem}.txt`), current.lines.length ? `${current.lines.join('\n')}\n` : '');
      images++;
      boxes += current.lines.length;
      options.onProgress?.(++done, total);
      current = null;
    };

    const q = yoloRowsQuery(selection);
    for await (const rows of snapshot.stream(q.sql, q.params)) {
      for (const r of rows) {
        if (current?.sampleOrd !== (r.sample_ord as number)) {
          await flush();
          current = await startSample(r);
        }
        if (!current || r.category_id === null) continue;
        if (r.is_crowd) skipped.crowd++;
        else if (r.bbox_x === null) skipped.noBox++;
        else if (current.width === null || current.height === null) skipped.noSize++;
        else current.lines.push(labelLine(classOf.get(r.category_id as number)!, r, current.width, current.height));
      }
    }
    await flush();

    async function startSample(r: Row): Promise<typeof current> {
      const fileName = r.file_name as string;
      const split = splitKey(r.split as string | null);
      if (!splits.has(split)) {
        splits.add(split);
        await fsp.mkdir(path.join(temp, 'images', split), { recursive: true });
        await fsp.mkdir(path.join(temp, 'labels', split), { recursive: true });
      }
      const { name, stem } = freeName(temp, split, fileName, r.image_id as number);
      try {
        const image = await deps.storage.imageObject(dataset.imageDir, fileName);
        const target = path.join(temp, 'images', split, name);
        if (!options.copy && image.path) await fsp.symlink(image.path, target);
        else await pipeline(await image.store.openRead(image.key), fs.createWriteStream(target));
      } catch (e) {
        if (!isDataVisorError(e) || e.code !== 'FILE_NOT_FOUND') throw e;
        skipped.missing++;
        options.onProgress?.(++done, total);
        return null;
      }
      return { sampleOrd: r.sample_ord as number, split, stem, lines: [], width: (r.width as number | null) ?? null, height: (r.height as number | null) ?? null };
    }

    const yaml: Record<string, unknown> = {};
    for (const split of [...splits].sort(splitOrder)) yaml[split] = `images/${split}`;
    yaml.nc = categories.length;
    yaml.names = categories.map((c) => c.name as string);
    await fsp.writeFile(
      path.join(temp, 'data.yaml'),
      `# DataVisor export of dataset ${dataset.id} (${dataset.name}); class i is the i-th category by COCO id: ` +
        `${categories.map((c, i) => `${i}=${c.category_id as number}`).join(' ')}\n${YAML.stringify(yaml)}`,
    );
    await fsp.rename(temp, out);
    return { images, boxes, warnings: warningsOf(skipped) };
  } catch (e) {
    await fsp.rm(temp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The image's name in its split folder: its own base name, unless an earlier image of the split
 * took it (or its label's name: `a.jpg` and `a.png`); then its path with `/` as `__`, then that
 * prefixed with its id. The folder itself is the record of names taken, so nothing is kept in memory.
 */
function freeName(root: string, split: string, fileName: string, imageId: number): { name: string; stem: string } {
  const base = path.posix.basename(fileName);
  const flat = fileName.replace(/^\/+/, '').replaceAll('/', '__');
  for (const name of [base, flat, `${imageId}_${flat}`]) {
    const stem = name.replace(/\.[^.]*$/, '');
    if (!taken(path.join(root, 'images', split, name)) && !taken(path.join(root, 'labels', split, `${stem}.txt`))) return { name, stem };
  }
  throw new BadInputError(`two images of split ${split} cannot be told apart by name: ${fileName}`);
}

function taken(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function splitKey(split: string | null): string {
  if (split === null || split === '') return 'train';
  return SPLIT_KEYS[split.toLowerCase()] ?? split.replace(/[^A-Za-z0-9._-]+/g, '_');
}

const ORDER = ['train', 'val', 'test'];
const splitOrder = (a: string, b: string) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b);

/** `class cx cy w h`, normalised: centre and size over the image's width and height. */
function labelLine(cls: number, r: Row, width: number, height: number): string {
  const x = r.bbox_x as number;
  const y = r.bbox_y as number;
  const w = r.bbox_w as number;
  const h = r.bbox_h as number;
  return `${cls} ${(x + w / 2) / width} ${(y + h / 2) / height} ${w / width} ${h / height}`;
}

function warningsOf(s: { crowd: number; noBox: number; noSize: number; missing: number }): string[] {
  const out: string[] = [];
  if (s.crowd) out.push(`${s.crowd} crowd region(s) left out (iscrowd: 1; YOLO has no crowd flag, and Ultralytics' own converter drops them)`);
  if (s.noBox) out.push(`${s.noBox} annotation(s) without a box left out`);
  if (s.noSize) out.push(`${s.noSize} box(es) of images without a known size left out (they cannot be normalised)`);
  if (s.missing) out.push(`${s.missing} image(s) whose file is missing left out, with their labels`);
  return out;
}
