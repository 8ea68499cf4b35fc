import fs from 'node:fs/promises';
import { baseName } from '../../storage/location.js';
import type { InputLocation, StorageService } from '../../storage/index.js';
import type { InputProbe } from './reader.js';

const HEAD_BYTES = 4096;
const MAX_ENTRIES = 500;

/**
 * What format detection looks at: the input's name, a file's first 4 KiB, a folder's entries
 * (folders end in `/`). Checks the data roots first, as every read of an input does.
 */
export async function probeInput(storage: StorageService, label: string, text: string): Promise<{ probe: InputProbe; input: InputLocation }> {
  const input = await storage.resolveInput(label, text, 'any');
  return { probe: await probeOf(storage, input), input };
}

async function probeOf(storage: StorageService, input: InputLocation): Promise<InputProbe> {
  const name = baseName(input.location);
  if (!input.isDirectory && input.store.kind !== 'local') return { kind: 'file', name, head: null, entries: [] };
  if (!input.isDirectory) {
    const size = input.size ?? HEAD_BYTES;
    const chunks: Uint8Array[] = [];
    if (size > 0) for await (const block of await storage.openInput(input, HEAD_BYTES, { start: 0, end: Math.min(size, HEAD_BYTES) })) chunks.push(block);
    const head = Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '');
    return { kind: 'file', name, head, entries: [] };
  }
  const entries: string[] = [];
  if (input.store.kind === 'local') {
    const dir = await fs.opendir(input.key);
    for await (const e of dir) {
      entries.push(e.isDirectory() ? `${e.name}/` : e.name);
      if (entries.length >= MAX_ENTRIES) break;
    }
    await dir.close().catch(() => undefined);
  } else {
    // A bucket has no folders: the first segment of the keys under the prefix stands for them.
    const seen = new Set<string>();
    let n = 0;
    for await (const key of input.store.list(input.key)) {
      const rest = key.slice(input.key.length).replace(/^\/+/, '');
      const slash = rest.indexOf('/');
      seen.add(slash === -1 ? rest : `${rest.slice(0, slash)}/`);
      if (++n >= 10 * MAX_ENTRIES || seen.size >= MAX_ENTRIES) break;
    }
    entries.push(...seen);
  }
  return { kind: 'directory', name, head: '', entries: entries.sort() };
}

/**
 * What an input recognisably is when it is not what a format reads, and what to do with it; null
 * for a file that is nothing recognisable (a reader then tries it, and its parser says precisely
 * where it fails: a truncated or malformed JSON file is a broken COCO file, not another format).
 */
export function describeInput(p: InputProbe): string | null {
  if (p.kind === 'directory') {
    if (p.entries.includes('Annotations/')) return 'a Pascal VOC folder (it holds Annotations/): ingest it with --format voc';
    const yaml = p.entries.find((e) => /\.ya?ml$/i.test(e));
    if (yaml) return `a folder holding ${yaml}: a YOLO dataset is ingested from its YAML (--format yolo)`;
    if (p.entries.includes('classes.txt')) return 'a darknet / labelImg folder (it holds classes.txt): ingest it with --format yolo';
    const json = p.entries.filter((e) => /\.json$/i.test(e));
    if (json.length > 0) return `a folder holding ${json.slice(0, 3).join(', ')}: pass a COCO annotation file itself, with this folder as image_dir`;
    if (p.entries.includes('VOC2007/') || p.entries.includes('VOC2012/')) return 'a VOCdevkit folder: pass its VOC2007/ or VOC2012/ folder';
    return `a folder (${p.entries.slice(0, 5).join(', ') || 'empty'}${p.entries.length > 5 ? ', …' : ''}) that holds no annotation format DataVisor reads`;
  }
  if (p.head === null) return null;
  const head = p.head.trimStart();
  if (head.startsWith('[')) {
    return 'a COCO results file (a JSON array of detections), not a dataset: import it as a prediction run of a dataset (datavisor predictions import <dataset> <file> --name <run>, or POST /datasets/{id}/predictions)';
  }
  if (head.startsWith('{')) return 'a JSON object: a COCO annotation file (--format coco)';
  if (/^<\?xml|^<annotation[\s>]/.test(head)) {
    return /<annotation[\s>]/.test(head)
      ? 'a Pascal VOC annotation (one image\'s XML): pass the folder that holds Annotations/, JPEGImages/ and ImageSets/ with --format voc'
      : 'an XML file, not an annotation format DataVisor reads';
  }
  if (/^(names|nc|train|val|test|path)\s*:/m.test(head)) return 'a YOLO dataset YAML: ingest it with --format yolo';
  return null;
}
