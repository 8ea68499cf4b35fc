import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { DEMO_IMAGES, hasShared, SHARED_MISSING } from './helpers/fixtures.js';

/**
 * Once per run, before any test file: draws the demo dataset the tests ingest into a temp folder
 * of the run (tests/helpers/fixtures.ts, `DEMO`), and says in one line when ../shared is missing.
 * The folder goes at the end of the run; folders of runs that died are removed by the next one.
 */

const PREFIX = 'datavisor-test-run-';

export default async function setup(project: TestProject): Promise<() => void> {
  removeLeftovers();
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`)));
  // dist/ is compiled by `npm test` before vitest starts.
  const { generateDemoDataset } = await import('../dist/demo/index.js');
  await generateDemoDataset(path.join(dir, 'demo'), { images: DEMO_IMAGES });
  project.provide('generatedDir', dir);
  if (!hasShared) console.warn(SHARED_MISSING);
  return () => fs.rmSync(dir, { recursive: true, force: true });
}

function removeLeftovers(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
