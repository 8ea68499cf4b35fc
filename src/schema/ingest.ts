import type { DataVisor } from '../services/app.js';
import { DataVisorError } from '../services/errors.js';
import { FORMAT_CHOICES } from '../services/ingest/formats/registry.js';
import { INGEST_STAGES, type IngestEvent, type IngestRequest } from '../services/ingest/request.js';
import { builder } from './builder.js';
import { DatasetType, WarningType } from './dataset.js';
import { ingestEventError } from './errors.js';

const IngestStageEnum = builder.enumType('IngestStage', {
  description: 'Stages in the order a COCO file is read (CATEGORIES may come before or after the images, as the file has them), then THUMBNAILS and COMPLETE. ERROR never arrives as data: a failed ingest ends the stream with a GraphQL error.',
  values: Object.fromEntries(INGEST_STAGES.map((s) => [s.toUpperCase(), { value: s }])),
});

const IngestInput = builder.inputType('IngestInput', {
  description: 'What to ingest: paths on the server, inside DATAVISOR_DATA_ROOTS.',
  fields: (t) => ({
    annotationPath: t.string({ required: true }),
    imageDir: t.string({ description: 'Folder holding the images: required for `coco`; for `voc`, default `<annotationPath>/JPEGImages`.' }),
    datasetName: t.string({ description: 'Defaults to the annotation file name without `.json`.' }),
    format: t.string({ description: `One of ${FORMAT_CHOICES.map((f) => `\`${f}\``).join(', ')}; default \`auto\`: told from the input.` }),
    split: t.string({ description: 'Applied to every sample of the dataset (the format may give its own splits).' }),
    into: t.string({ description: 'An existing dataset (id or unique name): the input is added to it as new splits instead of becoming a dataset; COMPLETE then names it and counts the addition.' }),
    storeShapes: t.boolean({ description: 'Keep polygons, RLE masks and keypoints for drawing (Annotation.segmentation); default: the DATAVISOR_STORE_SHAPES setting.' }),
  }),
});

export const IngestionProgress = builder.objectRef<IngestEvent & { prediction_count?: number }>('IngestionProgress').implement({
  description: 'One progress event of an ingest: the same events REST streams at POST /datasets/ingest.',
  fields: (t) => ({
    stage: t.field({ type: IngestStageEnum, resolve: (e) => e.stage }),
    current: t.exposeInt('current', { description: 'Items read in this stage so far.' }),
    total: t.exposeInt('total', { nullable: true, description: 'Items this stage will read, when known.' }),
    message: t.exposeString('message'),
    datasetId: t.id({ nullable: true, description: 'On COMPLETE: the id of the new dataset.', resolve: (e) => e.dataset_id ?? null }),
    dataset: t.field({ type: DatasetType, nullable: true, description: 'On COMPLETE: the new dataset.', resolve: (e) => e.dataset_id ?? null }),
    bytesRead: t.field({ type: 'SafeInt', resolve: (e) => e.bytes_read }),
    bytesTotal: t.field({ type: 'SafeInt', nullable: true, resolve: (e) => e.bytes_total }),
    imageCount: t.int({ nullable: true, description: 'On COMPLETE.', resolve: (e) => e.image_count ?? null }),
    annotationCount: t.int({ nullable: true, description: 'On COMPLETE.', resolve: (e) => e.annotation_count ?? null }),
    categoryCount: t.int({ nullable: true, description: 'On COMPLETE.', resolve: (e) => e.category_count ?? null }),
    warnings: t.field({ type: [WarningType], nullable: true, description: 'On COMPLETE.', resolve: (e) => e.warnings ?? null }),
    predictionCount: t.int({ nullable: true, description: 'On COMPLETE of a prediction import (importPredictions).', resolve: (e) => e.prediction_count ?? null }),
    code: t.string({
      nullable: true,
      description: "Kept for parity with REST's error event; always null here, because a failed ingest arrives as a GraphQL error whose extensions.code says why.",
      resolve: () => null,
    }),
  }),
});

builder.subscriptionFields((t) => ({
  ingestDataset: t.field({
    type: IngestionProgress,
    description:
      'Ingests a COCO file and streams its progress until COMPLETE. A failure ends the stream with an error whose extensions.code is NOT_FOUND, FORBIDDEN, BAD_USER_INPUT or INGEST_FAILED. Unsubscribing (or disconnecting) before COMPLETE cancels the ingest and leaves no dataset behind.',
    args: { input: t.arg({ type: IngestInput, required: true }) },
    // The very iterable REST's SSE consumes; graphql-js calls its return() when the client goes away.
    subscribe: (_root, { input }, ctx) => cancelledOnReturn(ctx.dv, input),
    resolve: (event) => {
      if (event.stage === 'error') throw ingestEventError(event.code, event.message);
      return event;
    },
  }),
}));

/**
 * The ingest's events, cancelled as REST's stream cancels them when the client goes away:
 * graphql-sse calls return() then, usually while a next() is pending, which return() would only
 * follow once the ingest reached its next event. Aborting stops it at its next check instead, and
 * the cancel is logged the same way (the service's `INGEST_CANCELLED` line and this one).
 */
function cancelledOnReturn(dv: DataVisor, input: IngestRequest): AsyncIterableIterator<IngestEvent> {
  const abort = new AbortController();
  const events = dv.ingestion.ingest(input, { signal: abort.signal });
  let last: IngestEvent | undefined;
  return {
    async next() {
      const step = await events.next();
      if (!step.done) last = step.value;
      return step;
    },
    async return(): Promise<IteratorResult<IngestEvent>> {
      if (last?.stage !== 'complete' && last?.stage !== 'error') {
        dv.log.info({ stage: last?.stage, transport: 'graphql-sse' }, 'client disconnected: cancelling the ingest');
        abort.abort(new DataVisorError('INGEST_CANCELLED', 'Ingestion cancelled: the client disconnected'));
      }
      return events.return(undefined);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
