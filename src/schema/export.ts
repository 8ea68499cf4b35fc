import { toSampleFilter } from '../services/datasets/filter.js';
import { exportPath } from '../services/export/export-url.js';
import { builder } from './builder.js';
import { DatasetType } from './dataset.js';
import { SampleFilterType, VIEW_ID_ARG } from './sample.js';

const ExportFormatEnum = builder.enumType('ExportFormat', {
  description: 'COCO: the ground truth as a COCO dataset; COCO_RESULTS: a prediction run as a COCO results file.',
  values: { COCO: { value: 'coco' }, COCO_RESULTS: { value: 'coco_results' } } as const,
});

const ExportAnnotationsEnum = builder.enumType('ExportAnnotations', {
  description: 'MATCHING: with a category filter, only the annotations and categories of those categories; ALL: every annotation of the exported samples.',
  values: { MATCHING: { value: 'matching' }, ALL: { value: 'all' } } as const,
});

builder.objectField(DatasetType, 'exportUrl', (t) =>
  t.string({
    description:
      'The URL of the REST download (GET /datasets/{id}/export) of this dataset, or of the samples matching `filter`, as COCO JSON; with ' +
      '`predictions`, that run as a COCO results file. Checked now: an unknown run is NOT_FOUND, a bad filter BAD_USER_INPUT. With an API ' +
      'token the URL is signed and works without it for a limited time, as image URLs do.',
    args: {
      format: t.arg({ type: ExportFormatEnum }),
      filter: t.arg({ type: SampleFilterType }),
      viewId: VIEW_ID_ARG(t),
      predictions: t.arg.string({ description: 'A prediction run of the dataset.' }),
      annotations: t.arg({ type: ExportAnnotationsEnum }),
    },
    resolve: async (dataset, args, ctx) => {
      const viewId = args.viewId?.toString() ?? null;
      const filter = await ctx.dv.views.filterOf(dataset.id, viewId, toSampleFilter(args.filter, (field) => `filter.${field}`));
      const request = { datasetId: dataset.id, format: args.format ?? null, filter, predictions: args.predictions ?? null, annotations: args.annotations ?? null };
      const checked = await ctx.dv.exports.check(request);
      const format = args.format ?? (checked.run ? 'coco_results' : 'coco');
      return ctx.origin + exportPath(dataset.id, { format, filter: args.filter, viewId, predictions: request.predictions, annotations: request.annotations }, ctx.dv.access);
    },
  }),
);
