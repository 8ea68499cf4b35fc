import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveImageFile } from '../../dist/services/storage/paths.js';
import { tempDir } from '../helpers/env.js';

const dir = fs.realpathSync(tempDir());

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('resolveImageFile', () => {
  it('follows an image folder whose symlink is re-pointed, and still refuses a way out', async () => {
    for (const d of ['a', 'b', 'outside']) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'a', 'x.jpg'), 'a');
    fs.writeFileSync(path.join(dir, 'b', 'x.jpg'), 'b');
    fs.writeFileSync(path.join(dir, 'outside', 'secret.jpg'), 's');
    const folder = path.join(dir, 'images');
    fs.symlinkSync(path.join(dir, 'a'), folder);
    // No data roots: only the folder's own files may be read.
    expect(await resolveImageFile(folder, 'x.jpg', [])).toBe(path.join(dir, 'a', 'x.jpg'));
    // The folder's real path was remembered as …/a; it now leads to …/b.
    fs.unlinkSync(folder);
    fs.symlinkSync(path.join(dir, 'b'), folder);
    expect(await resolveImageFile(folder, 'x.jpg', [])).toBe(path.join(dir, 'b', 'x.jpg'));
    fs.symlinkSync(path.join(dir, 'outside', 'secret.jpg'), path.join(dir, 'b', 'leak.jpg'));
    await expect(resolveImageFile(folder, 'leak.jpg', [])).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(resolveImageFile(folder, '../outside/secret.jpg', [])).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('follows a link anywhere within the data roots (DVC, git-annex), and no further', async () => {
    const roots = [path.join(dir, 'a'), path.join(dir, 'b')];
    fs.symlinkSync(path.join(dir, 'a', 'x.jpg'), path.join(dir, 'b', 'stored.jpg'));
    expect(await resolveImageFile(path.join(dir, 'b'), 'stored.jpg', roots)).toBe(path.join(dir, 'a', 'x.jpg'));
    await expect(resolveImageFile(path.join(dir, 'b'), 'leak.jpg', roots)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // A name that leaves the folder is refused as written, even when it would land in a root.
    await expect(resolveImageFile(path.join(dir, 'b'), '../a/x.jpg', roots)).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});
