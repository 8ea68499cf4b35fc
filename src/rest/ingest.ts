import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { DataVisorError } from '../services/errors.js';
import { FORMAT_CHOICES } from '../services/ingest/formats/registry.js';
import { INGEST_STAGES, type IngestEvent } from '../services/ingest/request.js';
import type { Logger } from '../services/logger.js';
import { errorResponses } from './errors.js';
import { newRouter } from './router.js';

export interface IngestRouteOptions {
  /** Interval of the `: ping` comments that keep proxies from closing a quiet stream. */
  heartbeatMs?: number;
}

const IngestBody = z
  .object({
    annotation_path: z.string({ error: 'must be a string' }).min(1, 'must not be empty').openapi({ description: 'COCO: the instances JSON file; VOC: the folder holding Annotations/. Inside DATAVISOR_DATA_ROOTS' }),
    image_dir: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional().openapi({ description: 'Folder holding the images named by file_name: required for COCO; for VOC, default <annotation_path>/JPEGImages' }),
    dataset_name: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    format: z.enum(FORMAT_CHOICES as [string, ...string[]], { error: `must be one of ${FORMAT_CHOICES.map((f) => `"${f}"`).join(', ')}` }).default('auto'),
    split: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional(),
    into: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional().openapi({ description: "An existing dataset (id or unique name): the input's images are added to it as new splits (docs/formats.md); `complete` then names it and counts the addition" }),
  })
  // COCO names its images relative to a folder it does not name: answer 400 before any stream, as
  // when image_dir was required of every format. Run even when other fields failed, so every
  // missing field is named at once.
  .superRefine((body, ctx) => {
    if (body.format === 'coco' && body.image_dir === undefined) ctx.addIssue({ code: 'custom', path: ['image_dir'], message: 'is required for format "coco"' });
  }, { when: (payload) => typeof payload.value === 'object' && payload.value !== null })
  .openapi('IngestRequest');

export const IngestEventSchema = z
  .object({
    stage: z.enum(INGEST_STAGES),
    current: z.number().int(),
    total: z.number().int().nullable(),
    message: z.string(),
    bytes_read: z.number().int(),
    bytes_total: z.number().int().nullable(),
    dataset_id: z.string().optional().openapi({ description: 'On complete' }),
    image_count: z.number().int().optional(),
    annotation_count: z.number().int().optional(),
    category_count: z.number().int().optional(),
    warnings: z.array(z.record(z.string(), z.unknown())).optional(),
    prediction_count: z.number().int().optional().openapi({ description: 'On complete of a prediction import' }),
    code: z.string().optional().openapi({ description: 'On error: FILE_NOT_FOUND, FORBIDDEN, INVALID_JSON, INVALID_COCO, INVALID_RESULTS, CONFLICT, INGEST_CANCELLED…' }),
  })
  .openapi('IngestEvent', {
    description: 'One `data:` line of the event stream. The stream ends after exactly one complete or error event.',
  });

const ingest = createRoute({
  method: 'post',
  path: '/datasets/ingest',
  summary: 'Ingests a COCO file as a new dataset, streaming progress as server-sent events',
  description:
    'A request that fails its schema answers 400 JSON before any stream starts. Once the stream has started, every failure ' +
    '(missing file, path outside DATAVISOR_DATA_ROOTS, malformed JSON…) is an `error` event and no dataset is left behind. ' +
    'Closing the connection cancels the ingest and rolls it back.',
  request: { body: { required: true, content: { 'application/json': { schema: IngestBody } } } },
  responses: {
    200: { description: '`data: {json}` per event, `: ping` comments as heartbeat', content: { 'text/event-stream': { schema: IngestEventSchema } } },
    ...errorResponses(400, 413, 415),
  },
});

const encoder = new TextEncoder();
/** Sent at once so that the headers go out before the first event (some clients wait for a byte). */
const OPENING = encoder.encode(': connected\n\n');
const PING = encoder.encode(': ping\n\n');

export function ingestRoutes(dv: DataVisor, opts: IngestRouteOptions = {}) {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  return newRouter().openapi(ingest, (c) => {
    const body = c.req.valid('json');
    const abort = new AbortController();
    const events = dv.ingestion.ingest({
      annotationPath: body.annotation_path,
      imageDir: body.image_dir,
      datasetName: body.dataset_name,
      format: body.format,
      split: body.split,
      into: body.into,
    }, { signal: abort.signal });
    return eventStreamResponse(eventStream(events, abort, heartbeatMs, c.var.log));
  });
}

export function eventStreamResponse(stream: ReadableStream<Uint8Array>): Response {
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // nginx buffers proxied responses unless told not to, which would hold every event back.
      'x-accel-buffering': 'no',
    },
  });
}

/**
 * The ingest generator (or a prediction import's) as an SSE byte stream, pulled one event at a time so a slow client slows
 * the ingest rather than piling events up. When the client goes away the Node adapter cancels the
 * stream; cancel() aborts the ingest (it stops at its next check instead of its next event) and
 * calls the generator's return(), whose `finally` rolls the transaction back.
 */
export function eventStream(
  events: AsyncGenerator<IngestEvent, void>,
  abort: AbortController,
  heartbeatMs: number,
  log: Logger,
): ReadableStream<Uint8Array> {
  let heartbeat: NodeJS.Timeout | undefined;
  let closed = false;
  let last: IngestEvent | undefined;
  const stop = () => {
    closed = true;
    clearInterval(heartbeat);
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(OPENING);
      heartbeat = setInterval(() => {
        if (!closed) controller.enqueue(PING);
      }, heartbeatMs);
    },
    async pull(controller) {
      let step: IteratorResult<IngestEvent, void>;
      try {
        step = await events.next();
      } catch (err) {
        // The service turns its failures into error events; reaching this is a bug, not bad input.
        log.error({ err }, 'ingest stream failed');
        if (!closed) {
          stop();
          controller.enqueue(encoder.encode(`data: ${JSON.stringify({ stage: 'error', current: 0, total: null, message: 'Unexpected error.', code: 'INTERNAL' })}\n\n`));
          controller.close();
        }
        return;
      }
      // cancel() may have run while we waited: the stream no longer takes chunks.
      if (closed) return;
      if (step.done) {
        stop();
        controller.close();
        log.info({ stage: last?.stage, code: last?.code, dataset_id: last?.dataset_id }, 'ingest stream ended');
        return;
      }
      last = step.value;
      controller.enqueue(encoder.encode(`data: ${JSON.stringify(step.value)}\n\n`));
    },
    async cancel() {
      stop();
      log.info({ stage: last?.stage }, 'client disconnected: cancelling the ingest');
      abort.abort(new DataVisorError('INGEST_CANCELLED', 'Ingestion cancelled: the client disconnected'));
      // Queued behind a pending next(); resolves once the generator's finally has rolled back.
      await events.return(undefined);
    },
  });
}
