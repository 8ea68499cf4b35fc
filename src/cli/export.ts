import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import type { ExportProgress, PreparedExport } from '../services/export/export.js';
import { BadInputError } from '../services/errors.js';
import { withDataVisor } from './with-datavisor.js';

interface ExportOptions {
  out: string;
  split?: string;
  category?: string[];
  predictions?: string;
  allAnnotations?: boolean;
  format: 'coco' | 'yolo';
  copy?: boolean;
}

/** `datavisor export`: COCO JSON of a dataset or a filtered view, or a prediction run's results file. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write a dataset (or the samples of a split or categories) as COCO JSON, or a prediction run as a COCO results file')
    .argument('<dataset>', 'dataset id or unique name')
    .requiredOption('--out <path>', 'the JSON file to write (- for standard output), or with --format yolo the folder to create; written under a temp name and renamed when complete')
    .option('--split <split>', 'only the samples of this split')
    .option('--category <name>', 'only the samples with an annotation of this category, and only those annotations (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--predictions <run>', 'write this prediction run as a COCO results file instead of the ground truth')
    .option('--all-annotations', 'with --category: keep every annotation (and category) of the chosen samples')
    .addOption(new Option('--format <format>', 'coco: COCO JSON; yolo: an Ultralytics folder (data.yaml, images/<split>/ linked, labels/<split>/)').choices(['coco', 'yolo']).default('coco'))
    .option('--copy', 'with --format yolo: copy the images instead of linking them (needed for datasets in a bucket)')
    .action(async (ref: string, opts: ExportOptions) => {
      if (opts.format === 'yolo') return exportYolo(ref, opts);
      if (opts.out !== '-') checkOut(opts.out);
      const summary = await withDataVisor(async (dv) => {
        const dataset = await dv.datasets.resolve(ref);
        const prepared = await dv.exports.prepare(requestOf(dataset.id, opts));
        for (const w of prepared.warnings) process.stderr.write(`datavisor: warning: ${w}\n`);
        await writeExport(prepared, opts.out);
        return prepared;
      });
      if (opts.out !== '-') {
        const what = summary.format === 'coco' ? `${summary.counts.images} images, ${summary.counts.annotations} annotations` : `${summary.counts.annotations} predictions`;
        process.stdout.write(`wrote ${opts.out}: ${what}\n`);
      }
    })
    .showHelpAfterError();
}

function requestOf(datasetId: string, opts: ExportOptions) {
  return {
    datasetId,
    filter: { ...(opts.split !== undefined ? { split: opts.split } : {}), ...(opts.category ? { categories: opts.category } : {}) },
    predictions: opts.predictions ?? null,
    annotations: opts.allAnnotations ? ('all' as const) : ('matching' as const),
  };
}

async function exportYolo(ref: string, opts: ExportOptions): Promise<void> {
  if (opts.out === '-') throw new BadInputError('--format yolo writes a folder: name it with --out DIR');
  const summary = await withDataVisor(async (dv) => {
    const dataset = await dv.datasets.resolve(ref);
    const bar = process.stderr.isTTY ? progressBar() : null;
    try {
      return await dv.exports.yolo(requestOf(dataset.id, opts), {
        out: opts.out,
        copy: opts.copy ?? false,
        onProgress: bar ? (done, total) => bar.update({ section: 'images', done, total }) : undefined,
      });
    } finally {
      bar?.stop();
    }
  });
  for (const w of summary.warnings) process.stderr.write(`datavisor: warning: ${w}\n`);
  process.stdout.write(`wrote ${opts.out}: ${summary.images} images, ${summary.boxes} boxes\n`);
}

/** Refuses an output whose folder is missing before any work (BAD_USER_INPUT: one line). */
function checkOut(out: string): void {
  const dir = path.dirname(path.resolve(out));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new BadInputError(`--out: the folder ${dir} does not exist; create it first`);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new BadInputError(`--out: ${out} is a folder; name the JSON file to write`);
}

/**
 * Streams the export into `out` (or stdout), with backpressure. A file is written under a temp name
 * beside it and renamed once complete, so a failed or interrupted export leaves no half file.
 */
async function writeExport(prepared: PreparedExport, out: string): Promise<void> {
  const bar = process.stderr.isTTY && out !== '-' ? progressBar() : null;
  const source = Readable.from(prepared.chunks(bar?.update));
  try {
    if (out === '-') {
      await pipeline(source, process.stdout as Writable, { end: false });
      return;
    }
    const target = path.resolve(out);
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
    try {
      await pipeline(source, fs.createWriteStream(temp));
      fs.renameSync(temp, target);
    } catch (e) {
      fs.rmSync(temp, { force: true });
      throw e;
    }
  } finally {
    bar?.stop();
    prepared.close();
  }
}

/** A bar per section (images, then annotations) on a terminal. */
function progressBar(): { update: (p: ExportProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    { format: ' {section} |{bar}| {percentage}% | {value}/{total}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  let section: string | null = null;
  return {
    update(p) {
      if (p.section !== section) {
        if (section !== null) bar.stop();
        section = p.section;
        bar.start(p.total, p.done, { section: p.section.padEnd(11) });
      } else bar.update(p.done);
    },
    stop: () => section !== null && bar.stop(),
  };
}
