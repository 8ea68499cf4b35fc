import type { PredictionRun } from '../services/predictions/predictions.js';
import { builder } from './builder.js';
import { DatasetType } from './dataset.js';
import { ingestEventError } from './errors.js';
import { parseDatasetRef } from './global-ids.js';
import { IngestionProgress } from './ingest.js';

const PredictionRunType = builder.objectRef<PredictionRun>('PredictionRun').implement({
  description: 'A model\'s predictions on a dataset, imported from a COCO results file and stored beside the ground truth.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Unique in the dataset.' }),
    predictionCount: t.exposeInt('predictionCount'),
    sourcePath: t.exposeString('sourcePath', { nullable: true, description: 'The results file, resolved.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.objectField(DatasetType, 'predictionRuns', (t) =>
  t.loadableList({
    type: PredictionRunType,
    description: 'Oldest first.',
    load: (ids: string[], ctx) => ctx.dv.predictions.listMany(ids),
    resolve: (d) => d.id,
  }),
);

const PredictionImportInput = builder.inputType('PredictionImportInput', {
  description: 'A COCO results file (a JSON array of `{image_id, category_id, score, bbox?, segmentation?}`) or a folder of YOLO prediction files, on the server, inside DATAVISOR_DATA_ROOTS.',
  fields: (t) => ({
    datasetId: t.id({ required: true }),
    resultsPath: t.string({ required: true }),
    name: t.string({ required: true, description: 'The run\'s name, unique in the dataset.' }),
    replace: t.boolean({ description: 'Replace a run of the same name instead of failing with CONFLICT.' }),
    format: t.string({ description: '`coco` (a results file), `yolo` (a folder of `class cx cy w h conf` .txt files, one per image, matched by file stem), or `auto` (the default: a folder is YOLO).' }),
    split: t.string({ description: "The split the predictions were made for: image ids (the file's own, after an `into` renumbered them) and YOLO file stems are those of its samples." }),
  }),
});

builder.subscriptionFields((t) => ({
  importPredictions: t.field({
    type: IngestionProgress,
    description:
      'Imports a COCO results file as a prediction run and streams its progress (PARSING_PREDICTIONS, then COMPLETE with predictionCount). A failure ends the stream with an error whose extensions.code is NOT_FOUND, FORBIDDEN, CONFLICT, INVALID_RESULTS, INVALID_JSON or BAD_USER_INPUT; nothing is left behind. Unsubscribing cancels the import.',
    args: { input: t.arg({ type: PredictionImportInput, required: true }) },
    subscribe: (_root, { input }, ctx) =>
      ctx.dv.predictions.import({
        datasetId: parseDatasetRef(String(input.datasetId)), resultsPath: input.resultsPath, name: input.name, replace: input.replace, format: input.format, split: input.split,
      }),
    resolve: (event) => {
      if (event.stage === 'error') throw ingestEventError(event.code, event.message);
      return event;
    },
  }),
}));

builder.mutationFields((t) => ({
  deletePredictions: t.string({
    description: 'Deletes a prediction run with every prediction of it; returns its name. NOT_FOUND for an unknown dataset or run.',
    args: { datasetId: t.arg.id({ required: true }), name: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await ctx.dv.predictions.delete(parseDatasetRef(String(args.datasetId)), args.name);
      return args.name;
    },
  }),
}));
