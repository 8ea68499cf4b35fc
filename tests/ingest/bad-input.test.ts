import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent, IngestRequest } from '../../dist/services/ingest/ingest.js';
import { DEMO, ingestAll, openTestEnv, traces, type TestEnv } from '../helpers/env.js';
import { writeSyntheticCoco } from '../helpers/fixtures.js';

/**
 * Every fatal input ends the ingest with exactly one `error` event that names what is wrong and
 * where, and leaves nothing behind (no rows, no staging tables, no thumbnails); the same
 * DataVisor then ingests a good file as usual.
 */

interface Coco {
  info?: Record<string, unknown>;
  licenses?: { id: number }[];
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[]; segmentation: unknown; iscrowd: number }[];
  categories: { id: number; name: string }[];
}

/** The demo dataset's file (tests/helpers/fixtures.ts): compact JSON, categories last. */
const SOURCE = fs.readFileSync(DEMO.annotations);
const SOURCE_TEXT = SOURCE.toString('utf8');
const ORACLE = JSON.parse(SOURCE_TEXT) as Coco;
/** Thumbnails on, so that "no thumbnail folder left" is a real check. */
const THUMBNAILS_ON_INGEST = 1;

let env: TestEnv;
let fx: string;
let cacheDir: string;
let big: string;
/** A small good file (first 10 images of the demo and their annotations) for the "still works" check. */
let good: { path: string; images: number; annotations: number };

const modified = (change: (c: Coco) => void): string => {
  const c = structuredClone(ORACLE);
  change(c);
  return JSON.stringify(c);
};

function write(name: string, content: string | Buffer): string {
  const p = path.join(fx, name);
  fs.writeFileSync(p, content);
  return p;
}

/** Byte offset of the start of annotations[k] in the file (every element starts with "id"; "categories" follows). */
function annotationStarts(text: string): number[] {
  const starts: number[] = [];
  const from = text.indexOf('"annotations"');
  const to = text.indexOf('"categories"', from);
  for (let i = text.indexOf('{"id":', from); i !== -1 && i < to; i = text.indexOf('{"id":', i + 1)) starts.push(i);
  return starts;
}

function cacheEntries(): string[] {
  return fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [];
}

/** Rows in every table of the database (a table added later is covered too). */
async function rowsInEveryTable(): Promise<Record<string, number>> {
  const tables = await env.dv.db.query(`SELECT table_name FROM duckdb_tables() WHERE table_name <> 'schema_version' ORDER BY table_name`);
  const out: Record<string, number> = {};
  for (const t of tables) {
    const name = t.table_name as string;
    out[name] = Number((await env.dv.db.query(`SELECT count(*) AS n FROM "${name}"`))[0]!.n);
  }
  return out;
}

async function expectNothingLeft(): Promise<void> {
  expect(await traces(env.dv)).toEqual({ datasets: 0, samples: 0, annotations: 0, categories: 0, licenses: 0, staging: 0 });
  const rows = await rowsInEveryTable();
  expect(Object.entries(rows).filter(([, n]) => n !== 0)).toEqual([]);
  expect(cacheEntries()).toEqual([]);
  expect(env.dv.ingestion.active).toBe(0);
}

/** The same DataVisor still ingests a good file (and its thumbnails); then it is deleted again. */
async function expectGoodIngestStillWorks(): Promise<void> {
  const events = await ingestAll(env.dv, { annotationPath: good.path, imageDir: DEMO.images });
  const last = events.at(-1)!;
  expect(last).toMatchObject({ stage: 'complete', image_count: good.images, annotation_count: good.annotations, category_count: ORACLE.categories.length });
  const id = last.dataset_id!;
  expect((await env.dv.datasets.get(id)).imageCount).toBe(good.images);
  expect(cacheEntries()).toEqual([id]);
  await env.dv.datasets.delete(id);
  await expectNothingLeft();
}

function expectOneErrorAtEnd(events: IngestEvent[], code: string): IngestEvent {
  const errors = events.filter((e) => e.stage === 'error');
  expect(errors).toHaveLength(1);
  expect(events.at(-1)).toBe(errors[0]);
  expect(events.some((e) => e.stage === 'complete')).toBe(false);
  const error = errors[0]!;
  expect({ code: error.code, current: error.current, total: error.total }).toEqual({ code, current: 0, total: null });
  expect(typeof error.message).toBe('string');
  return error;
}

/** Runs a fatal ingest and checks the common contract; returns the error message for precise checks. */
async function fatal(request: IngestRequest, code: string): Promise<string> {
  const events = await ingestAll(env.dv, request);
  const error = expectOneErrorAtEnd(events, code);
  await expectNothingLeft();
  await expectGoodIngestStillWorks();
  return error.message;
}

const fatalFile = (name: string, content: string | Buffer, code: string) =>
  fatal({ annotationPath: write(name, content), imageDir: DEMO.images }, code);

/** The number in "byte N" of a message. */
function reportedByte(message: string): number {
  const m = /\bbyte (\d+)/.exec(message);
  expect(m, `no "byte N" in: ${message}`).not.toBeNull();
  return Number(m![1]);
}

beforeAll(async () => {
  env = await openTestEnv({ DATAVISOR_THUMBNAILS_ON_INGEST: String(THUMBNAILS_ON_INGEST) });
  cacheDir = env.dv.settings.cacheDir;
  fx = path.join(env.dir, 'fixtures');
  fs.mkdirSync(fx);
  const keep = new Set(ORACLE.images.slice(0, 10).map((i) => i.id));
  const small = modified((c) => {
    c.images = c.images.filter((i) => keep.has(i.id));
    c.annotations = c.annotations.filter((a) => keep.has(a.image_id));
  });
  good = {
    path: write('good.json', small),
    images: 10,
    annotations: ORACLE.annotations.filter((a) => keep.has(a.image_id)).length,
  };
  // ~11 MB: long enough to be stopped while it parses. Inside the env folder, a data root.
  big = path.join(fx, 'big.json');
  writeSyntheticCoco(big, { images: 3000 });
});

afterAll(async () => {
  await env?.close();
});

describe('truncated JSON', () => {
  const starts = annotationStarts(SOURCE_TEXT);

  it.each([
    ['at 50%', 0.5],
    ['at 99%', 0.99],
  ])('a file cut %s is INVALID_JSON naming the end byte and the element it stopped in', async (_label, fraction) => {
    const cut = Math.floor(SOURCE.length * fraction);
    const k = starts.filter((s) => s < cut).length - 1;
    expect(k).toBeGreaterThan(0);
    const message = await fatalFile(`cut-${fraction}.json`, SOURCE.subarray(0, cut), 'INVALID_JSON');
    expect(message).toContain('Truncated');
    expect(reportedByte(message)).toBe(cut);
    expect(message).toContain(`annotations[${k}]`);
  });

  it('a file holding only "{" is INVALID_JSON, truncated at byte 1', async () => {
    const message = await fatalFile('brace.json', '{', 'INVALID_JSON');
    expect(message).toContain('Truncated');
    expect(reportedByte(message)).toBe(1);
  });

  it('an empty file is INVALID_JSON at byte 0', async () => {
    const message = await fatalFile('empty.json', '', 'INVALID_JSON');
    expect(reportedByte(message)).toBe(0);
  });
});

describe('malformed JSON', () => {
  const starts = annotationStarts(SOURCE_TEXT);
  // annotations[100] ends where annotations[101] starts: `…},{"id"…`.
  const end100 = SOURCE_TEXT.lastIndexOf('}', starts[101]!) + 1;

  /**
   * The message places the error truthfully: either exactly ("byte N", give or take 64) or as a
   * range of at most one read block ("between bytes A and B") that holds it.
   */
  function expectPlaced(message: string, at: number): void {
    const range = /between bytes (\d+) and (\d+)/.exec(message);
    const exact = /\bbyte (\d+)/.exec(message);
    expect(range ?? exact, `no byte position in: ${message}`).not.toBeNull();
    const [lo, hi] = range ? [Number(range[1]), Number(range[2])] : [Number(exact![1]) - 64, Number(exact![1]) + 64];
    expect({ lo: lo <= at, hi: at <= hi, at, message }).toEqual({ lo: true, hi: true, at, message });
    expect(hi - lo).toBeLessThanOrEqual(64 * 1024);
  }

  /** The element named is the right one when the message says "in", and not a later one when it says "after". */
  function expectElement(message: string, section: string, index: number): void {
    const m = new RegExp(`\\((in|after the start of) ${section}\\[(\\d+)\\]\\)`).exec(message);
    expect(m, `no ${section}[…] in: ${message}`).not.toBeNull();
    if (m![1] === 'in') expect([index, index + 1]).toContain(Number(m![2]));
    else expect(Number(m![2])).toBeLessThanOrEqual(index + 1);
  }

  it('a stray character in the annotations array: the byte it is at and its element', async () => {
    const at = starts[101]!; // after "},"
    const text = `${SOURCE_TEXT.slice(0, at)}@${SOURCE_TEXT.slice(at)}`;
    const message = await fatalFile('stray.json', text, 'INVALID_JSON');
    expect(message).toContain('Malformed JSON');
    expectPlaced(message, at);
    expectElement(message, 'annotations', 100);
  });

  it('a missing comma between two annotations: the byte it is at and its element', async () => {
    const text = `${SOURCE_TEXT.slice(0, end100)}${SOURCE_TEXT.slice(end100 + 1)}`; // `}{` instead of `},{`
    const message = await fatalFile('no-comma.json', text, 'INVALID_JSON');
    expect(message).toContain("expected ','");
    expectPlaced(message, end100 + 1);
    expectElement(message, 'annotations', 100);
  });

  it('garbage before the document is placed at its start, in no element', async () => {
    const message = await fatalFile('garbage.json', `xyz${SOURCE_TEXT}`, 'INVALID_JSON');
    expect(message).toContain('Malformed JSON');
    expectPlaced(message, 0);
    expect(message).not.toContain('[');
  });

  it('a second top-level value after the document is placed at its byte, and not "in" any element', async () => {
    const message = await fatalFile('two-values.json', `${SOURCE_TEXT} {}`, 'INVALID_JSON');
    expectPlaced(message, SOURCE.length + 1);
    expect(message).not.toContain('(in ');
  });

  it('an error held back across a read-block edge is still inside the reported range', async () => {
    // `"width": 64 @xxx…`: the stray "@" sits 40 bytes before the 64 KiB edge with no separator
    // after it until past the edge, so the parser only sees it in the next block.
    const head = '{"info": {"description": "';
    const mid = '"}, "images": [{"id": 1, "file_name": "000000000009.jpg", "width": 640 ';
    const at = 65536 - 40;
    const text = `${head}${'p'.repeat(at - head.length - mid.length)}${mid}@${'x'.repeat(80)}, "height": 480}], "annotations": [], "categories": []}`;
    expect(text.indexOf('@')).toBe(at);
    const message = await fatalFile('held-back.json', text, 'INVALID_JSON');
    expect(message).toContain('Malformed JSON');
    expectPlaced(message, at);
  });
});

// Only ids, references, file names and geometry are fatal; fields that only inform are read
// leniently (tests/ingest/loose-fields.test.ts).
describe('wrong types', () => {
  it.each<[string, (c: Coco) => void, string[]]>([
    ['an image id given as a string', (c) => ((c.images[3] as { id: unknown }).id = '9'), ['images[3]', '"id" must be an integer', 'the string "9"']],
    ['a missing file_name', (c) => delete (c.images[3] as { file_name?: string }).file_name, ['images[3]', '"file_name" is missing']],
    ['a bbox of 3 numbers', (c) => (c.annotations[5]!.bbox = [1, 2, 3]), ['annotations[5]', '"bbox" must be [x, y, width, height]']],
    ['segmentation a number', (c) => (c.annotations[5]!.segmentation = 7), ['annotations[5]', '"segmentation" must be', 'number 7']],
    ['a float category_id', (c) => (c.annotations[5]!.category_id = 1.5), ['annotations[5]', '"category_id" must be an integer', '1.5']],
    ['"images" an object', (c) => ((c as { images: unknown }).images = { 0: c.images[0] }), ['"images" must be an array, found an object']],
  ])('%s is INVALID_COCO naming the path and key', async (label, change, fragments) => {
    const message = await fatalFile(`${label.replace(/\W+/g, '-')}.json`, modified(change), 'INVALID_COCO');
    expect(message.startsWith('Invalid COCO')).toBe(true);
    for (const f of fragments) expect(message).toContain(f);
  });

  it('a top-level array is a results file: BAD_USER_INPUT pointing at the predictions import', async () => {
    const message = await fatalFile('top-array.json', JSON.stringify([ORACLE]), 'BAD_USER_INPUT');
    expect(message).toMatch(/^annotation_path "top-array\.json" is not in a format DataVisor reads \(coco, voc, yolo\): it looks like a COCO results file .*datavisor predictions import/);
  });

  it('a top-level array given as --format coco names what it is', async () => {
    const message = await fatal({ annotationPath: path.join(fx, 'top-array.json'), imageDir: DEMO.images, format: 'coco' }, 'BAD_USER_INPUT');
    expect(message).toMatch(/^annotation_path "top-array\.json" is not a COCO annotation file: it looks like a COCO results file/);
  });

  it.each([
    ['a Pascal VOC XML', 'voc.xml', '<?xml version="1.0"?>\n<annotation><filename>a.jpg</filename></annotation>', /a Pascal VOC annotation \(one image's XML\): pass the folder that holds Annotations\//],
    ['a YOLO data.yaml', 'data.yaml', 'train: ../train/images\nnc: 2\nnames: [a, b]\n', /a YOLO dataset YAML: ingest it with --format yolo/],
  ])('%s says what it looks like', async (_what, name, text, looks) => {
    const kinds = path.join(env.dir, 'other-kinds');
    fs.mkdirSync(kinds, { recursive: true });
    fs.writeFileSync(path.join(kinds, name), text);
    const message = await fatal({ annotationPath: path.join(kinds, name), imageDir: DEMO.images, format: 'coco' }, 'BAD_USER_INPUT');
    expect(message).toMatch(looks);
  });

  it.each(['images', 'annotations', 'categories'] as const)('a file without "%s" is INVALID_COCO', async (key) => {
    const message = await fatalFile(`no-${key}.json`, modified((c) => delete (c as Partial<Coco>)[key]), 'INVALID_COCO');
    expect(message).toContain(`the top-level key "${key}" is missing`);
  });
});

describe('broken references', () => {
  it('an annotation of an unknown image names annotations[N], its id and the image id', async () => {
    const a = ORACLE.annotations[7]!;
    const message = await fatalFile('orphan.json', modified((c) => (c.annotations[7]!.image_id = 424242)), 'INVALID_COCO');
    expect(message).toContain('annotations[7]');
    expect(message).toContain(`annotation ${a.id} `);
    expect(message).toContain('image_id 424242');
  });

  it('an annotation of an unknown category names annotations[N] and the category id', async () => {
    const a = ORACLE.annotations[7]!;
    const message = await fatalFile('bad-category.json', modified((c) => (c.annotations[7]!.category_id = 424242)), 'INVALID_COCO');
    expect(message).toContain('annotations[7]');
    expect(message).toContain(`annotation ${a.id} `);
    expect(message).toContain('category_id 424242');
  });

  it('duplicate image ids are INVALID_COCO naming both positions', async () => {
    const id = ORACLE.images[2]!.id;
    const message = await fatalFile('dup-images.json', modified((c) => (c.images[5]!.id = id)), 'INVALID_COCO');
    expect(message).toContain(`image id ${id} appears 2 times`);
    expect(message).toContain('images[2] and images[5]');
  });

  it('duplicate category ids are INVALID_COCO naming both positions', async () => {
    const id = ORACLE.categories[2]!.id;
    // The annotations of the old categories[5] id now name no category: the duplicate is reported first.
    const message = await fatalFile('dup-categories.json', modified((c) => (c.categories[5]!.id = id)), 'INVALID_COCO');
    expect(message).toContain(`category id ${id} appears twice`);
    expect(message).toContain('categories[2] and categories[5]');
  });
});

describe('paths', () => {
  it('a missing annotation file is FILE_NOT_FOUND', async () => {
    const p = path.join(fx, 'does-not-exist.json');
    const message = await fatal({ annotationPath: p, imageDir: DEMO.images }, 'FILE_NOT_FOUND');
    expect(message).toBe(`annotation_path ${JSON.stringify(p)} does not exist`);
  });

  it('a missing image folder is FILE_NOT_FOUND', async () => {
    const p = path.join(fx, 'no-such-images');
    const message = await fatal({ annotationPath: good.path, imageDir: p }, 'FILE_NOT_FOUND');
    expect(message).toBe(`image_dir ${JSON.stringify(p)} does not exist`);
  });

  it('an annotation_path that is a directory is BAD_USER_INPUT', async () => {
    const message = await fatal({ annotationPath: fx, imageDir: DEMO.images }, 'BAD_USER_INPUT');
    expect(message).toMatch(/^annotation_path "fixtures" is not in a format DataVisor reads \(coco, voc, yolo\): it looks like a folder holding .*\.json.*: pass a COCO annotation file itself, with this folder as image_dir$/);
  });

  it('an image_dir that is a file is BAD_USER_INPUT', async () => {
    const message = await fatal({ annotationPath: good.path, imageDir: good.path }, 'BAD_USER_INPUT');
    expect(message).toBe(`image_dir ${JSON.stringify(good.path)} is not a directory`);
  });

  it('an absolute path outside the data roots is FORBIDDEN', async () => {
    const message = await fatal({ annotationPath: '/etc/hostname', imageDir: DEMO.images }, 'FORBIDDEN');
    expect(message).toBe('annotation_path "/etc/hostname" is outside the allowed data roots (DATAVISOR_DATA_ROOTS)');
  });

  it('a non-existent path outside the roots is FORBIDDEN too, so existence is not revealed', async () => {
    const message = await fatal({ annotationPath: '/etc/datavisor-no-such-file.json', imageDir: DEMO.images }, 'FORBIDDEN');
    expect(message).toContain('outside the allowed data roots');
    expect(message).not.toContain('does not exist');
  });

  it('an image_dir outside the roots is FORBIDDEN', async () => {
    const message = await fatal({ annotationPath: good.path, imageDir: '/etc' }, 'FORBIDDEN');
    expect(message).toBe('image_dir "/etc" is outside the allowed data roots (DATAVISOR_DATA_ROOTS)');
  });

  it('a symlink inside a root that points outside is FORBIDDEN', async () => {
    const link = path.join(fx, 'link-to-hostname.json');
    fs.symlinkSync('/etc/hostname', link);
    const message = await fatal({ annotationPath: link, imageDir: DEMO.images }, 'FORBIDDEN');
    expect(message).toContain('outside the allowed data roots');
  });

  it('a symlinked image folder pointing outside is FORBIDDEN', async () => {
    const link = path.join(fx, 'link-to-etc');
    fs.symlinkSync('/etc', link);
    const message = await fatal({ annotationPath: good.path, imageDir: link }, 'FORBIDDEN');
    expect(message).toContain('image_dir');
    expect(message).toContain('outside the allowed data roots');
  });

  it('"../" that climbs out of a root is FORBIDDEN', async () => {
    const depth = fx.split(path.sep).length;
    const p = `${fx}/${'../'.repeat(depth)}etc/hostname`;
    const message = await fatal({ annotationPath: p, imageDir: DEMO.images }, 'FORBIDDEN');
    expect(message).toContain('outside the allowed data roots');
  });

  it('"../" that stays inside a root is fine', async () => {
    const events = await ingestAll(env.dv, { annotationPath: `${fx}/sub/../good.json`, imageDir: `${DEMO.images}/../images` });
    const last = events.at(-1)!;
    expect(last).toMatchObject({ stage: 'complete', image_count: 10 });
    expect((await env.dv.datasets.get(last.dataset_id!)).sourcePath).toBe(good.path);
    await env.dv.datasets.delete(last.dataset_id!);
    await expectNothingLeft();
  });
});

describe('bad requests', () => {
  it('format "kitti" is BAD_USER_INPUT', async () => {
    const message = await fatal({ annotationPath: good.path, imageDir: DEMO.images, format: 'kitti' }, 'BAD_USER_INPUT');
    expect(message).toBe('format "kitti" is not supported; the supported formats are "auto", "coco", "voc", "yolo"');
  });

  it('an empty annotation_path is BAD_USER_INPUT', async () => {
    const message = await fatal({ annotationPath: '', imageDir: DEMO.images }, 'BAD_USER_INPUT');
    expect(message).toContain('annotation_path');
    expect(message).toContain('non-empty');
  });

  it('a NUL byte in the path is BAD_USER_INPUT', async () => {
    const message = await fatal({ annotationPath: `${good.path}\0.txt`, imageDir: DEMO.images }, 'BAD_USER_INPUT');
    expect(message).toBe('annotation_path must not contain a NUL byte');
  });
});

describe('cancellation', () => {
  /** Open file descriptors of this process on `file` (Linux; elsewhere the check is skipped). */
  const openHandles = (file: string) => {
    if (!fs.existsSync('/proc/self/fd')) return 0;
    return fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false; // the fd of readdir itself is gone by now
      }
    }).length;
  };
  /** A worker thread shows as an active MessagePort until it has exited. */
  const messagePorts = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
  let portsBefore: number;
  beforeAll(() => {
    portsBefore = messagePorts();
  });

  it('return() on the iterator after parsing_annotations starts rolls everything back and releases the file', async () => {
    const it = env.dv.ingestion.ingest({ annotationPath: big, imageDir: fx });
    const seen: IngestEvent[] = [];
    for await (const e of it) {
      seen.push(e);
      if (e.stage === 'parsing_annotations') break; // calls it.return()
    }
    expect(seen.at(-1)!.stage).toBe('parsing_annotations');
    expect(seen.at(-1)!.bytes_read).toBeLessThan(fs.statSync(big).size);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    await expectNothingLeft();
    // The parser stops with the ingest: its worker thread has exited and the file is closed.
    expect(messagePorts()).toBe(portsBefore);
    expect(openHandles(big)).toBe(0);
    await expectGoodIngestStillWorks();
  });

  it('an AbortSignal aborted mid-way ends with one INGEST_CANCELLED error and leaves nothing', async () => {
    const abort = new AbortController();
    const events: IngestEvent[] = [];
    for await (const e of env.dv.ingestion.ingest({ annotationPath: big, imageDir: fx }, { signal: abort.signal })) {
      events.push(e);
      if (e.stage === 'parsing_annotations') abort.abort();
    }
    const error = expectOneErrorAtEnd(events, 'INGEST_CANCELLED');
    expect(error.message).toBe('Ingestion cancelled');
    expect(events.filter((e) => e.stage === 'parsing_annotations')).toHaveLength(1);
    await expectNothingLeft();
    expect(messagePorts()).toBe(portsBefore);
    expect(openHandles(big)).toBe(0);
    await expectGoodIngestStillWorks();
  });

  it('a signal aborted before the start ends with INGEST_CANCELLED at once', async () => {
    const events = await (async () => {
      const out: IngestEvent[] = [];
      for await (const e of env.dv.ingestion.ingest({ annotationPath: big, imageDir: fx }, { signal: AbortSignal.abort() })) out.push(e);
      return out;
    })();
    expectOneErrorAtEnd(events, 'INGEST_CANCELLED');
    expect(events.filter((e) => e.stage === 'parsing_annotations')).toEqual([]);
    await expectNothingLeft();
    await expectGoodIngestStillWorks();
  });

  it('cancelAll() stops a running ingest with INGEST_CANCELLED and leaves nothing', async () => {
    const events: IngestEvent[] = [];
    for await (const e of env.dv.ingestion.ingest({ annotationPath: big, imageDir: fx })) {
      events.push(e);
      if (e.stage === 'parsing_annotations') {
        expect(env.dv.ingestion.active).toBe(1);
        env.dv.ingestion.cancelAll();
      }
    }
    const error = expectOneErrorAtEnd(events, 'INGEST_CANCELLED');
    expect(error.message).toBe('Ingestion cancelled: the server is shutting down');
    await expectNothingLeft();
    expect(messagePorts()).toBe(portsBefore);
    expect(openHandles(big)).toBe(0);
    await expectGoodIngestStillWorks();
  });

  it('an abort after the thumbnails are made removes them with the rows', async () => {
    const abort = new AbortController();
    const events: IngestEvent[] = [];
    for await (const e of env.dv.ingestion.ingest({ annotationPath: DEMO.annotations, imageDir: DEMO.images }, { signal: abort.signal })) {
      events.push(e);
      if (e.stage === 'thumbnails' && e.current === e.total) {
        // They exist on disk now, under the (not yet committed) dataset's folder.
        const [folder, ...others] = cacheEntries();
        expect(others).toEqual([]);
        const files = fs.readdirSync(path.join(cacheDir, folder!), { recursive: true }).filter((f) => String(f).endsWith('.webp'));
        expect(files).toHaveLength(THUMBNAILS_ON_INGEST);
        abort.abort();
      }
    }
    expect(events.filter((e) => e.stage === 'thumbnails').at(-1)).toMatchObject({ current: THUMBNAILS_ON_INGEST, total: THUMBNAILS_ON_INGEST });
    expectOneErrorAtEnd(events, 'INGEST_CANCELLED');
    await expectNothingLeft();
    await expectGoodIngestStillWorks();
  });
});
