import { Option, type Command } from 'commander';
import { PREDICTION_FORMATS } from '../services/predictions/predictions.js';
import { predictionRunJson } from '../services/datasets/json-views.js';
import { createProgressView } from './progress.js';
import { withDataVisor } from './with-datavisor.js';

/** `datavisor predictions import|list|delete`. `fail` prints one line and exits non-zero. */
export function registerPredictionCommands(program: Command, fail: (message: string) => never): void {
  const predictions = program.command('predictions').description('prediction runs of a dataset: import, list, delete');

  predictions
    .command('import')
    .description('import a COCO results file, or a folder of YOLO prediction .txt files, as a prediction run of the dataset')
    .argument('<dataset>', 'dataset id or unique name')
    .argument('<results_path>', 'COCO results JSON ([{image_id, category_id, score, bbox?, segmentation?}]) or a folder of YOLO .txt files (class cx cy w h conf)')
    .requiredOption('--name <run>', 'name of the run, unique in the dataset')
    .option('--replace', 'replace a run of the same name')
    .addOption(new Option('--format <format>', 'predictions format (auto: a folder is yolo, a file coco)').choices([...PREDICTION_FORMATS]).default('auto'))
    .option('--split <split>', 'the split the predictions were made for (image ids and file stems of its samples)')
    .option('--json', 'print one JSON progress event per line instead of a progress bar')
    .action(async (ref: string, resultsPath: string, opts: { name: string; replace?: boolean; format: string; split?: string; json?: boolean }) => {
      const last = await withDataVisor(async (dv) => {
        const dataset = await dv.datasets.resolve(ref);
        const view = opts.json ? null : createProgressView(process.stderr);
        const abort = new AbortController();
        // Ctrl-C cancels the import, which rolls back; a second Ctrl-C exits at once.
        process.once('SIGINT', () => {
          abort.abort();
          process.once('SIGINT', () => process.exit(130));
        });
        let end: { stage: string; message: string; code?: string } | null = null;
        try {
          for await (const e of dv.predictions.import({ datasetId: dataset.id, resultsPath, name: opts.name, replace: opts.replace ?? false, format: opts.format, split: opts.split }, { signal: abort.signal })) {
            end = e;
            if (opts.json) process.stdout.write(`${JSON.stringify(e)}\n`);
            else view!.update(e);
          }
        } finally {
          view?.stop();
        }
        return end;
      });
      if (last?.stage !== 'complete') fail(`import failed (${last?.code ?? 'INTERNAL'}): ${last?.message ?? 'no result'}`);
      if (!opts.json) process.stdout.write(`${last.message}\n`);
    });

  predictions
    .command('list')
    .description('list the prediction runs of a dataset, oldest first')
    .argument('<dataset>', 'dataset id or unique name')
    .option('--json', 'print {"predictions":[…]} as GET /datasets/{id}/predictions does')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const runs = await withDataVisor(async (dv) => dv.predictions.list((await dv.datasets.resolve(ref)).id));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ predictions: runs.map(predictionRunJson) })}\n`);
      } else if (runs.length === 0) {
        process.stdout.write('no prediction runs\n');
      } else {
        const rows = runs.map((r) => [r.name, String(r.predictionCount), r.createdAt.toISOString(), r.sourcePath ?? '']);
        const head = ['NAME', 'PREDICTIONS', 'CREATED', 'SOURCE'];
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
      }
    });

  predictions
    .command('delete')
    .description('delete a prediction run and every prediction of it')
    .argument('<dataset>', 'dataset id or unique name')
    .argument('<run>', 'name of the run')
    .action(async (ref: string, name: string) => {
      await withDataVisor(async (dv) => dv.predictions.delete((await dv.datasets.resolve(ref)).id, name));
      process.stdout.write(`deleted prediction run ${JSON.stringify(name)}\n`);
    });
}
