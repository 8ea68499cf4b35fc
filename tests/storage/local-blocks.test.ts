import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../dist/services/storage/local.js';
import { tempDir } from '../helpers/env.js';

/**
 * LocalStore.readBlocks: how an ingest reads a local annotation file. Blocks handed back are read
 * into again, so a whole file passes through a few buffers; the bytes must be the file's exactly,
 * over any range.
 */

const BLOCK = 64 * 1024;
const dir = tempDir();
const file = path.join(dir, 'data.bin');
const bytes = randomBytes(5 * BLOCK + 12_345);
fs.writeFileSync(file, bytes);

/** Reads with a consumer that hands each block back once it is done with it, as the parser does. */
async function readAll(options: { start?: number; end?: number } = {}) {
  const free: Uint8Array[] = [];
  const seen = new Set<ArrayBufferLike>();
  const out: Buffer[] = [];
  for await (const block of new LocalStore().readBlocks(file, BLOCK, options, { take: () => free.pop() })) {
    out.push(Buffer.from(block));
    seen.add(block.buffer);
    free.push(new Uint8Array(block.buffer));
  }
  return { data: Buffer.concat(out), buffers: seen.size, blocks: out.length };
}

describe('LocalStore.readBlocks', () => {
  it('reads the whole file, block by block, into one buffer handed back each time', async () => {
    const r = await readAll();
    expect(r.data.equals(bytes)).toBe(true);
    expect(r.blocks).toBe(6);
    expect(r.buffers).toBe(1);
  });

  it('reads a range, start and end inclusive as in HTTP ranges', async () => {
    for (const [start, end] of [[0, 0], [1, BLOCK], [BLOCK - 3, 3 * BLOCK + 7], [5 * BLOCK, bytes.length - 1], [100, bytes.length + 50_000]] as const) {
      const r = await readAll({ start, end });
      expect(r.data.equals(bytes.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
  });

  it('allocates its own buffers when none are handed back', async () => {
    const out: Uint8Array[] = [];
    for await (const block of new LocalStore().readBlocks(file, BLOCK)) out.push(block);
    expect(new Set(out.map((b) => b.buffer)).size).toBe(out.length);
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
  });

  it('a missing file is FILE_NOT_FOUND naming it', async () => {
    const blocks = new LocalStore().readBlocks(path.join(dir, 'nope.json'), BLOCK);
    await expect(blocks.next()).rejects.toMatchObject({ code: 'FILE_NOT_FOUND', message: expect.stringContaining('nope.json') });
  });
});
