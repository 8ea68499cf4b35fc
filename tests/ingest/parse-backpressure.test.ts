import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCoco, type ParseInput } from '../../dist/services/ingest/formats/coco/parse-coco.js';
import { bigCocoFile } from '../rest/helpers.js';

/**
 * What parseCoco holds must not depend on how fast its consumer (the writer) is: blocks read from
 * the file and not yet handed on stay bounded per parse thread, however slow the consumer. Peak
 * RSS of a whole ingest with a slowed consumer: `npm run bench:ingest -- --busy-main 0.8`.
 */

const BLOCK = 256 * 1024;
/** parse-coco.ts's IN_FLIGHT, plus the block whose records the consumer holds. */
const BOUND_PER_THREAD = 4 + 1;

let file: string;

beforeAll(async () => {
  // 45 MB: 174 blocks.
  file = await bigCocoFile();
});

/** The file in BLOCK-sized blocks, counting the blocks read. */
function countingInput(): { input: ParseInput; blocksRead: () => number } {
  let read = 0;
  const size = fs.statSync(file).size;
  const input: ParseInput = {
    size,
    async open(range) {
      const start = range?.start ?? 0;
      const end = range?.end ?? size;
      // Read as LocalStore reads: each block is an I/O the event loop waits for.
      return (async function* () {
        const fh = await fs.promises.open(file, 'r');
        try {
          for (let at = start; at < end; at += BLOCK) {
            const block = new Uint8Array(Math.min(BLOCK, end - at));
            await fh.read(block, 0, block.length, at);
            read++;
            yield block;
          }
        } finally {
          await fh.close();
        }
      })();
    },
  };
  return { input, blocksRead: () => read };
}

/** The main thread busy for `ms`, as a slow writer or a loaded machine keeps it: the parse threads run on. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('a consumer slower than the parse threads', () => {
  it.each([
    ['one thread', 1],
    ['a file split over two threads', 2],
  ])('%s: blocks read ahead of the consumer stay bounded', async (_label, threads) => {
    const { input, blocksRead } = countingInput();
    const parse = parseCoco(input, { threads, minPartBytes: 1024 * 1024 });
    let steps = 0;
    let ahead = 0;
    let records = 0;
    for (let step = await parse.next(); !step.done; step = await parse.next()) {
      steps++;
      for (const ev of step.value.events) if (ev.kind === 'annotations' || ev.kind === 'images') records += ev.columns.count;
      ahead = Math.max(ahead, blocksRead() - steps);
      busy(20);
    }
    expect(records).toBeGreaterThan(80_000);
    expect(steps).toBeGreaterThan(170);
    expect(ahead).toBeLessThanOrEqual(BOUND_PER_THREAD * threads);
  });
});
