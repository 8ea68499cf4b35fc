import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { writeSyntheticCoco } from './synthetic-coco.js';

/**
 * Where the tests' data comes from, in one place. Three kinds:
 *
 * - Committed, always there: tests/fixtures/ (small real exports, their licenses beside them).
 * - Generated for each run: the project's own demo dataset (src/demo/, drawn once per run by
 *   tests/global-setup.ts), and synthetic COCO files without images (synthetic-coco.ts), made on
 *   first use. They live in a temp folder of the run, removed at its end.
 * - The larger real sets in `../shared/realdata`, beside the repository (CI has it; a fresh clone
 *   does not). Tests on them are declared with `describe.skipIf(!hasShared)` (or `it.skipIf`):
 *   without it they are skipped, not failed, and the run says so in one line (global setup).
 *
 * Paths are real paths: datasets store the resolved paths they were ingested from, even when a
 * folder is reached through a symlink.
 */

export const REPO = fs.realpathSync(fileURLToPath(new URL('../..', import.meta.url)));
export const FIXTURES = path.join(REPO, 'tests', 'fixtures');

/** The Roboflow RBC export's committed splits (tests/fixtures/README.md): valid 20 images, test 10. */
export const RBC = (split: 'valid' | 'test') => ({
  annotations: path.join(FIXTURES, 'rbc-coco-roboflow', split, '_annotations.coco.json'),
  images: path.join(FIXTURES, 'rbc-coco-roboflow', split),
});

/** 8 images of the rice-pest YOLOv8 export, with its data.yaml (tests/fixtures/README.md). */
export const RICE_PEST_YOLO = path.join(FIXTURES, 'rice-pest-yolo-roboflow');

// ---------------------------------------------------------------------------------------------
// ../shared: present in CI and on the project's machines, absent from a fresh clone.

const SHARED_PATH = path.resolve(REPO, '..', 'shared');
/** Whether `../shared/realdata` is there: tests on coco128 and the full RBC export need it. */
export const hasShared = fs.existsSync(path.join(SHARED_PATH, 'realdata'));
export const SHARED = hasShared ? fs.realpathSync(SHARED_PATH) : SHARED_PATH;
export const REALDATA = path.join(SHARED, 'realdata');
/** COCO 2017's first 128 train images: 939 annotations, 80 categories (ids 1..90), real photos. */
export const COCO128 = {
  dir: path.join(REALDATA, 'coco128-instances'),
  annotations: path.join(REALDATA, 'coco128-instances', 'annotations', 'instances_train2017.json'),
  images: path.join(REALDATA, 'coco128-instances', 'train2017'),
};
/** The RBC export's train split (210 images, 4,947 annotations; 5.6 MB, not committed). */
export const RBC_TRAIN = {
  annotations: path.join(REALDATA, 'rbc-coco-roboflow', 'train', '_annotations.coco.json'),
  images: path.join(REALDATA, 'rbc-coco-roboflow', 'train'),
};
/** The one line a run without ../shared prints (tests/global-setup.ts). */
export const SHARED_MISSING = `${SHARED_PATH}/realdata not found: the tests on coco128 and the full RBC export are skipped (they run where ../shared sits beside the repository, as in CI)`;

// ---------------------------------------------------------------------------------------------
// Generated for this run.

/** Images of the demo dataset the tests use (seed 1): as many as coco128 has. */
export const DEMO_IMAGES = 128;

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's temp folder (tests/global-setup.ts): the demo dataset and synthetic files. */
    generatedDir: string;
  }
}

/** The run's temp folder for generated data (a data root of every test server). */
export const generatedDir = (): string => inject('generatedDir');

/**
 * The demo dataset (src/demo/): 128 JPEGs of shapes in 4 sizes and their COCO file, categories
 * last, 8 categories with gaps in their ids, polygons and a crowd RLE, image ids with gaps, images
 * without annotations (docs/demo.md). Getters: the folder is only known inside a test worker.
 */
export const DEMO = {
  get annotations(): string {
    return path.join(generatedDir(), 'demo', 'annotations.json');
  },
  get images(): string {
    return path.join(generatedDir(), 'demo', 'images');
  },
};

/** A JSON file read and parsed: the oracle tests check stored values against. */
export function readJson<T = unknown>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/**
 * A synthetic train2017-like COCO file (no images, synthetic-coco.ts), made once per run and
 * shared by the test files that ask for the same one: 12,000 images (~45 MB) make an ingest of a
 * second or more. Written under a temp name and renamed, so parallel test files never read half
 * a file.
 */
export async function bigCocoFile(images = 12_000, seed = 1): Promise<string> {
  const file = path.join(generatedDir(), `synthetic-coco-${images}-${seed}.json`);
  if (fs.existsSync(file)) return file;
  const temp = `${file}.${process.pid}.tmp`;
  writeSyntheticCoco(temp, { images, seed });
  fs.renameSync(temp, file);
  return file;
}

export { writeSyntheticCoco };

/**
 * DATAVISOR_DATA_ROOTS for a test's DataVisor: the committed fixtures, the run's generated data,
 * ../shared when it is there, and `extra` (the test's own temp folders, bucket prefixes).
 */
export function dataRoots(...extra: string[]): string {
  return [FIXTURES, generatedDir(), ...(hasShared ? [SHARED] : []), ...extra].join(',');
}
