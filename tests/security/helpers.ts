import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEMO_IMAGES, DEMO_JSON, dist, readCoco, startHarness, type Harness } from '../graphql/harness.js';

/**
 * Servers for the access-control tests: the GraphQL harness (real server on 127.0.0.1, a new
 * DuckDB file, dist/ loaded by Node's own loader) with DATAVISOR_API_TOKEN and friends set.
 */

export { DEMO_IMAGES, DEMO_JSON, dist, type Harness };

/** The demo's first image (the harness ingests the demo): a sample id every probe can ask for. */
export const SAMPLE_ID = (JSON.parse(readFileSync(DEMO_JSON, 'utf8')) as { images: { id: number }[] }).images[0]!.id;

export const TOKEN = 'dv-test-token-7f3a9c2e51b84d06';
export const AUTH = { authorization: `Bearer ${TOKEN}` } as const;

export function startSecured(env: Record<string, string> = {}): Promise<Harness> {
  return startHarness({ env: { DATAVISOR_API_TOKEN: TOKEN, ...env } });
}

/** A one-image COCO file (the demo's first image) in the harness' temp folder: a quick real ingest. */
export async function tinyCoco(h: Harness): Promise<{ annotation_path: string; image_dir: string }> {
  const file = path.join(h.tmp, 'tiny.json');
  const { file_name, width, height } = (await readCoco()).images[0]!;
  await fs.writeFile(
    file,
    JSON.stringify({
      categories: [{ id: 1, name: 'thing' }],
      images: [{ id: 9, file_name, width, height }],
      annotations: [{ id: 1, image_id: 9, category_id: 1, bbox: [1, 2, 3, 4], area: 12, iscrowd: 0 }],
    }),
  );
  return { annotation_path: file, image_dir: DEMO_IMAGES };
}

/** The JSON error body of a refusal, with the status. */
export async function refusal(res: Response): Promise<{ status: number; code: string | undefined; message: string | undefined }> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  return { status: res.status, code: body.error?.code, message: body.error?.message };
}
