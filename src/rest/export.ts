import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { SAMPLE_FILTER_FIELDS, toSampleFilter } from '../services/datasets/filter.js';
import { ANNOTATION_SCOPES, EXPORT_FORMATS, type PreparedExport } from '../services/export/export.js';
import type { Logger } from '../services/logger.js';
import { negotiate } from './compression.js';
import { errorResponses } from './errors.js';
import { DatasetIdParams, newRouter } from './router.js';
import { EVALUATION_HAS, FILTER_PARAMS, filterInput, VIEW_PARAM } from './samples.js';

const EXPORT_PARAMS = {
  format: z.enum(EXPORT_FORMATS, { error: `must be one of ${EXPORT_FORMATS.join(', ')}` }).optional().openapi({
    description: '`coco` (default): the ground truth as a COCO dataset; with `predictions`, or `coco_results`, the run as a COCO results file',
  }),
  predictions: z.string().min(1, 'must not be empty').optional().openapi({ description: 'A prediction run of the dataset: exports its COCO results file', example: 'yolov8n' }),
  annotations: z.enum(ANNOTATION_SCOPES, { error: `must be one of ${ANNOTATION_SCOPES.join(', ')}` }).optional().openapi({
    description: '`matching` (default): with a category filter, only the annotations (and categories) of those categories; `all`: every annotation of the exported images',
  }),
  // A signed URL's (GraphQL exportUrl, with DATAVISOR_API_TOKEN): checked by requireExportAccess.
  exp: z.string().optional().openapi({ description: 'Expiry of a signed export URL (unix seconds)' }),
  sig: z.string().optional().openapi({ description: 'Signature of a signed export URL' }),
};

const KNOWN_PARAMS = [...Object.keys(EXPORT_PARAMS), ...Object.keys(FILTER_PARAMS), ...Object.keys(EVALUATION_HAS), ...Object.keys(VIEW_PARAM)];

const ExportQuery = z.strictObject(
  { ...EXPORT_PARAMS, ...FILTER_PARAMS, ...EVALUATION_HAS, ...VIEW_PARAM },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown parameter${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; the parameters are ${KNOWN_PARAMS.join(', ')}`
        : undefined,
  },
);

const exportDataset = createRoute({
  method: 'get',
  path: '/datasets/{id}/export',
  summary: 'Downloads the dataset, or the samples matching the filters, as COCO JSON (or a prediction run as a COCO results file), streamed',
  description:
    'The same filters as GET /samples. The answer is streamed as it is read from the database (gzip when the client accepts it), with ' +
    '`Content-Disposition: attachment`; `X-DataVisor-Image-Count` and `X-DataVisor-Annotation-Count` say how many objects it holds, ' +
    '`X-DataVisor-Warning` what it could not keep (e.g. polygons not stored at ingest). Errors in the request answer 400/404 before anything is sent.',
  request: { params: DatasetIdParams, query: ExportQuery },
  responses: {
    200: { description: 'COCO JSON (a dataset object, or a results array)', content: { 'application/json': { schema: z.unknown() } } },
    ...errorResponses(400, 404),
  },
});

export function exportRoutes(dv: DataVisor) {
  return newRouter().openapi(exportDataset, async (c) => {
    const { id } = c.req.valid('param');
    const q = c.req.valid('query');
    const given = toSampleFilter(filterInput(q), (field) => `query parameter "${SAMPLE_FILTER_FIELDS[field].param}"`);
    const filter = await dv.views.filterOf(id, q.view, given);
    const prepared = await dv.exports.prepare({ datasetId: id, filter, format: q.format, predictions: q.predictions, annotations: q.annotations });
    const headers = new Headers({
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="${prepared.fileName}"`,
      'cache-control': 'no-store',
      'x-datavisor-image-count': String(prepared.counts.images),
      'x-datavisor-annotation-count': String(prepared.counts.annotations),
      vary: 'Accept-Encoding',
    });
    for (const w of prepared.warnings) headers.append('x-datavisor-warning', w);
    if (c.req.method === 'HEAD') {
      prepared.close();
      return new Response(null, { status: 200, headers }) as never;
    }
    let body = bodyOf(prepared, c.var.log);
    // gzip only: the export is compressed as it streams, and Node 20's CompressionStream has no brotli.
    const encoding = negotiate(c.req.header('accept-encoding') ? gzipOnly(c.req.header('accept-encoding')!) : undefined);
    if (encoding === 'gzip') {
      body = body.pipeThrough(new CompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>);
      headers.set('content-encoding', 'gzip');
    }
    return new Response(body, { status: 200, headers }) as never;
  });
}

/** Accept-Encoding with brotli dropped, so negotiate() picks gzip or nothing. */
function gzipOnly(acceptEncoding: string): string {
  return acceptEncoding
    .split(',')
    .filter((part) => !/^\s*br\s*(;|$)/i.test(part))
    .join(',');
}

/**
 * The export's chunks as a byte stream that pulls the next chunk only when the socket took the last
 * (backpressure: memory holds a chunk). A client that goes away cancels it, which stops the query and
 * frees its connection. A failure mid-stream can no longer change the status: it is logged and the
 * connection is cut, so the client sees a truncated download, never a complete-looking one.
 */
function bodyOf(prepared: PreparedExport, log: Logger): ReadableStream<Uint8Array> {
  const chunks = prepared.chunks();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await chunks.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        } catch (err) {
          log.error({ err, dataset_id: prepared.dataset.id }, 'export failed while streaming');
          controller.error(err);
        }
      },
      async cancel() {
        await chunks.return();
      },
    },
    { highWaterMark: 0 },
  );
}
