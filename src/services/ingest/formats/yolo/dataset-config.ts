import { parse, YAMLParseError } from 'yaml';
import { BadInputError } from '../../../errors.js';

/** What a dataset YAML (or a darknet `classes.txt`) says, before any path is resolved. */
export interface YoloConfig {
  /** Class names by id, in id order. */
  names: Map<number, string>;
  /** `nc` when given and different from the number of names (a warning, not an error). */
  ncMismatch: number | null;
  /** `path` as written; null when absent or empty (the YAML's folder). */
  path: string | null;
  /** The splits in the YAML's order, each with its paths as written. */
  splits: { name: string; paths: string[]; list: boolean }[];
  /** `kpt_shape` of a pose dataset. */
  kptShape: [number, number] | null;
}

/** The split keys Ultralytics reads (`validation` is its old name for `val`). */
const SPLIT_KEYS = ['train', 'val', 'validation', 'test'] as const;

const HELP = 'A YOLO dataset YAML names its classes and its splits, e.g.\n  path: .\n  train: images/train\n  val: images/val\n  names: [cat, dog]';

/** Parses a dataset YAML; every way it can fail says what is wrong and what to do. */
export function parseDatasetYaml(text: string, label: string): YoloConfig {
  let data: unknown;
  try {
    data = parse(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new BadInputError(`${label} is not valid YAML${where}: ${(e as Error).message.split('\n')[0]}. Fix the file, or point annotation_path at the dataset's YAML.`, { cause: e });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new BadInputError(`${label} is not a YOLO dataset YAML: it holds ${describe(data)}, not a mapping of keys. ${HELP}`);
  }
  const d = data as Record<string, unknown>;
  if (d.names === undefined || d.names === null) {
    const why = d.nc !== undefined ? 'it has `nc` but no `names`, and DataVisor shows classes by name' : 'it has no `names` key';
    throw new BadInputError(`${label} is not a usable YOLO dataset YAML: ${why}. Add the class names in class-id order, e.g. names: [cat, dog] or names: {0: cat, 1: dog}.`);
  }
  const names = readNames(d.names, label);
  let ncMismatch: number | null = null;
  if (d.nc !== undefined && d.nc !== null) {
    if (typeof d.nc !== 'number' || !Number.isInteger(d.nc) || d.nc < 0) throw new BadInputError(`${label}: \`nc\` must be a whole number (the number of classes), not ${JSON.stringify(d.nc)}`);
    if (d.nc !== names.size) ncMismatch = d.nc;
  }
  const splits: YoloConfig['splits'] = [];
  for (const key of SPLIT_KEYS) {
    const v = d[key];
    if (v === undefined || v === null || v === '') continue;
    const name = key === 'validation' ? 'val' : key;
    if (key === 'validation' && d.val !== undefined && d.val !== null) continue;
    const paths = typeof v === 'string' ? [v] : Array.isArray(v) && v.every((p) => typeof p === 'string' && p !== '') ? (v as string[]) : null;
    if (!paths || paths.length === 0) throw new BadInputError(`${label}: \`${key}\` must be a path or a list of paths (folders of images, or .txt lists of images), not ${JSON.stringify(v)}`);
    splits.push({ name, paths, list: typeof v !== 'string' });
  }
  if (splits.length === 0) {
    throw new BadInputError(`${label} names no split: it needs at least one of train, val, test (a folder of images, a list of folders, or a .txt list of images). ${HELP}`);
  }
  let path: string | null = null;
  if (d.path !== undefined && d.path !== null && d.path !== '') {
    if (typeof d.path !== 'string') throw new BadInputError(`${label}: \`path\` must be a folder path, not ${JSON.stringify(d.path)}`);
    path = d.path;
  }
  let kptShape: [number, number] | null = null;
  if (d.kpt_shape !== undefined && d.kpt_shape !== null) {
    const k = d.kpt_shape;
    if (!Array.isArray(k) || k.length !== 2 || !Number.isInteger(k[0]) || (k[0] as number) < 1 || (k[1] !== 2 && k[1] !== 3)) {
      throw new BadInputError(`${label}: \`kpt_shape\` must be [keypoints, 2 or 3], not ${JSON.stringify(k)}`);
    }
    kptShape = [k[0] as number, k[1] as number];
  }
  return { names, ncMismatch, path, splits, kptShape };
}

function readNames(v: unknown, label: string): Map<number, string> {
  const names = new Map<number, string>();
  if (Array.isArray(v)) {
    v.forEach((n, i) => names.set(i, nameText(n, `names[${i}]`, label)));
  } else if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v as Record<string, unknown>).map(([k, n]) => {
      if (!/^(0|[1-9]\d*)$/.test(k) || !Number.isSafeInteger(Number(k))) {
        throw new BadInputError(`${label}: the keys of \`names\` must be class ids (0, 1, 2…), not ${JSON.stringify(k)}`);
      }
      return [Number(k), nameText(n, `names[${k}]`, label)] as const;
    });
    entries.sort((a, b) => a[0] - b[0]);
    for (const [k, n] of entries) names.set(k, n);
  } else {
    throw new BadInputError(`${label}: \`names\` must be a list (names: [cat, dog]) or a mapping of class ids (names: {0: cat, 1: dog}), not ${JSON.stringify(v)}`);
  }
  if (names.size === 0) throw new BadInputError(`${label}: \`names\` is empty; list the class names in class-id order, e.g. names: [cat, dog]`);
  return names;
}

function nameText(n: unknown, where: string, label: string): string {
  if (typeof n === 'string' && n !== '') return n;
  if (typeof n === 'number' || typeof n === 'boolean') return String(n);
  throw new BadInputError(`${label}: ${where} must be a class name, not ${JSON.stringify(n)}`);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v} (${JSON.stringify(v).slice(0, 40)})`;
}

/** darknet / labelImg `classes.txt`: one class name a line, the line number its id. */
export function parseClassesTxt(text: string, label: string): Map<number, string> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new BadInputError(`${label} is empty: it should list the class names, one a line, in class-id order`);
  const names = new Map<number, string>();
  lines.forEach((l, i) => names.set(i, l === '' ? `class_${i}` : l));
  return names;
}

/** Cheap check for format detection: a top-level `names:` key in the first bytes. */
export function looksLikeDatasetYaml(head: string): boolean {
  return /^names\s*:/m.test(head);
}
