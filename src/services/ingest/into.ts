import path from 'node:path';
import type { MergePlacement } from '../db/dataset-writer.js';
import { BadInputError, DataVisorError, isDataVisorError } from '../errors.js';
import { commonDir, formatLocation, parseLocation, type Location, type StorageService } from '../storage/index.js';

/**
 * Where the images of a dataset and of the splits added to it (`into`) are served from. A dataset
 * has one image folder and relative file names, so the merged dataset's folder is the common folder
 * of both (as a YOLO YAML's splits in several folders: formats/yolo/layout.ts), and each half's
 * file names get the path from there to its own folder. The files are the same files: thumbnails,
 * cached by (dataset, image id), stay right.
 */
export async function placeImages(storage: StorageService, into: string, existingDir: string, addedDir: string): Promise<MergePlacement> {
  const a = parseLocation('image_dir', existingDir);
  const b = parseLocation('image_dir', addedDir);
  if (a.kind !== b.kind || (a.kind !== 'local' && b.kind !== 'local' && a.bucket !== b.bucket)) {
    throw new BadInputError(`into: the dataset's images are in ${existingDir} and the added file's in ${addedDir}; a dataset's images must share one folder (the same disk or bucket): put them together, or ingest the file as a dataset of its own`);
  }
  const key = (l: Location) => (l.kind === 'local' ? path.posix.normalize(l.path) : l.key);
  const root = commonDir(key(a), key(b));
  const common: Location = a.kind === 'local' ? { kind: 'local', path: root } : { ...a, key: root };
  const commonUrl = formatLocation(common);
  if (commonUrl !== existingDir && commonUrl !== addedDir) {
    try {
      await storage.resolveInput('image_dir', commonUrl, 'directory');
    } catch (e) {
      if (isDataVisorError(e) && e.code === 'FORBIDDEN') {
        throw new DataVisorError('FORBIDDEN', `into: the dataset's images (${existingDir}) and the added file's (${addedDir}) are served from their common folder ${commonUrl}, which is outside the allowed data roots (DATAVISOR_DATA_ROOTS): add it to the data roots`, { cause: e });
      }
      throw e;
    }
  }
  const prefix = (l: Location) => {
    const rel = a.kind === 'local' ? path.posix.relative(root, key(l)) : key(l).slice(root === '' ? 0 : root.length + 1);
    return rel === '' ? '' : `${rel}/`;
  };
  return { into, imageDir: commonUrl, existingPrefix: prefix(a), addedPrefix: prefix(b) };
}
