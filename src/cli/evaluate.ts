import { Option, type Command } from 'commander';
import { evaluationJson } from '../services/datasets/json-views.js';
import type { Evaluation } from '../services/evaluation/evaluations.js';
import { withDataVisor } from './with-datavisor.js';

/** pycocotools' summarize() lines: which metric, its IoU, area range and maxDets. */
const LINES: readonly [keyof Evaluation['metrics'] & string, 'AP' | 'AR', string, string, number][] = [
  ['ap', 'AP', '0.50:0.95', 'all', 100],
  ['ap50', 'AP', '0.50', 'all', 100],
  ['ap75', 'AP', '0.75', 'all', 100],
  ['ap_small', 'AP', '0.50:0.95', 'small', 100],
  ['ap_medium', 'AP', '0.50:0.95', 'medium', 100],
  ['ap_large', 'AP', '0.50:0.95', 'large', 100],
  ['ar1', 'AR', '0.50:0.95', 'all', 1],
  ['ar10', 'AR', '0.50:0.95', 'all', 10],
  ['ar100', 'AR', '0.50:0.95', 'all', 100],
  ['ar_small', 'AR', '0.50:0.95', 'small', 100],
  ['ar_medium', 'AR', '0.50:0.95', 'medium', 100],
  ['ar_large', 'AR', '0.50:0.95', 'large', 100],
];

/** The 12 lines as pycocotools prints them (its format string, to the character). */
export function summaryLines(metrics: Record<string, number>): string[] {
  return LINES.map(([key, kind, iou, area, maxDets]) => {
    const title = (kind === 'AP' ? 'Average Precision' : 'Average Recall').padEnd(18);
    return ` ${title} (${kind}) @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${String(maxDets).padStart(3)} ] = ${metrics[key]!.toFixed(3)}`;
  });
}

export function registerEvaluateCommand(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate a prediction run against the ground truth (COCO bbox or segm, the numbers of pycocotools)')
    .argument('<dataset>', 'dataset id or unique name')
    .requiredOption('--predictions <run>', 'name of the prediction run')
    .addOption(new Option('--iou-type <type>', 'what to compare').choices(['bbox', 'segm']).default('bbox'))
    .option('--json', 'print {"evaluation": Evaluation} as REST answers it')
    .action(async (ref: string, opts: { predictions: string; iouType: 'bbox' | 'segm'; json?: boolean }) => {
      const evaluation = await withDataVisor(async (dv) =>
        dv.evaluations.evaluate({ datasetId: (await dv.datasets.resolve(ref)).id, predictions: opts.predictions, iouType: opts.iouType }),
      );
      if (opts.json) process.stdout.write(`${JSON.stringify({ evaluation: evaluationJson(evaluation) })}\n`);
      else process.stdout.write(`${summaryLines(evaluation.metrics).join('\n')}\n`);
    });
}
