import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadSettings } from '../config.js';
import { openDataVisor } from '../services/app.js';
import { isDataVisorError } from '../services/errors.js';
import { DEFAULT_FORMAT, FORMAT_CHOICES } from '../services/ingest/formats/registry.js';
import { createLogger } from '../services/logger.js';
import { datasetTable, listDatasets } from './datasets.js';
import { registerEvaluateCommand } from './evaluate.js';
import { registerExportCommand } from './export.js';
import { registerPredictionCommands } from './predictions.js';
import { createProgressView } from './progress.js';
import { serve } from './serve.js';

/** One line on stderr and a non-zero exit: what a script calling the CLI can act on. */
function fail(message: string, code = 1): never {
  process.stderr.write(`datavisor: ${message.replace(/\s+/g, ' ')}\n`);
  process.exit(code);
}

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('datavisor')
  .version(version)
  .description('Computer-vision dataset introspection: COCO into DuckDB, served over GraphQL and REST')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the HTTP server (GraphQL at /graphql, REST, thumbnails)')
  .action(async () => {
    await serve(loadSettings());
  });

program
  .command('ingest')
  .description('ingest a COCO file and its image folder, a YOLO data.yaml or a Pascal VOC folder as a new dataset, or (--into) as new splits of one')
  .argument('<annotation_path>', 'COCO instances JSON file, or (--format voc) the folder holding Annotations/')
  .argument('[image_dir]', 'folder holding the images named by file_name (required for COCO; VOC: default <annotation_path>/JPEGImages)')
  .option('--name <name>', 'dataset name (default: the annotation file name)')
  .option('--split <split>', 'split of every image, e.g. train')
  .option('--into <dataset>', 'add the images as new splits of this dataset (id or unique name) instead of making a dataset')
  .option('--shapes', 'also store polygons, RLE masks and keypoints (slower ingest; default: DATAVISOR_STORE_SHAPES)')
  .addOption(new Option('--format <format>', 'annotation format').choices([...FORMAT_CHOICES]).default(DEFAULT_FORMAT))
  .option('--json', 'print one JSON progress event per line instead of a progress bar')
  .action(async (annotationPath: string, imageDir: string | undefined, opts: { name?: string; split?: string; into?: string; shapes?: boolean; format: string; json?: boolean }) => {
    // Logs would tear the progress bar, and the outcome is printed anyway: only unexpected errors are logged.
    const dv = await openDataVisor(loadSettings(), createLogger(process.env.DATAVISOR_LOG_LEVEL || 'error'));
    const view = opts.json ? null : createProgressView(process.stderr);
    let last: { stage: string; message: string; code?: string } | null = null;
    // Ctrl-C cancels the ingest, which rolls back; a second Ctrl-C exits at once.
    const abort = new AbortController();
    process.once('SIGINT', () => {
      abort.abort();
      process.once('SIGINT', () => process.exit(130));
    });
    try {
      for await (const e of dv.ingestion.ingest(
        { annotationPath, imageDir: imageDir ?? null, datasetName: opts.name, split: opts.split, into: opts.into, format: opts.format, storeShapes: opts.shapes ?? null },
        { signal: abort.signal },
      )) {
        last = e;
        if (opts.json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else view!.update(e);
      }
    } finally {
      view?.stop();
      await dv.close();
    }
    if (last?.stage !== 'complete') fail(`ingest failed (${last?.code ?? 'INTERNAL'}): ${last?.message ?? 'no result'}`);
    if (!opts.json) process.stdout.write(`${last.message}\n`);
  });

program
  .command('datasets')
  .description('list datasets, newest first (from the running server when `datavisor serve` holds the database)')
  .option('--json', 'print {"datasets":[…]} as GET /datasets does')
  .action(async (opts: { json?: boolean }) => {
    const list = await listDatasets(loadSettings());
    process.stdout.write(opts.json ? `${JSON.stringify(list)}\n` : datasetTable(list.datasets));
  });

registerPredictionCommands(program, fail);
registerEvaluateCommand(program);
registerExportCommand(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  fail(isDataVisorError(e) ? `${e.message}` : `unexpected error: ${(e as Error)?.message ?? String(e)}`);
});
