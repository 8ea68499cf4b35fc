import { Readable } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import type { DataVisor } from '../services/app.js';
import { decideRange } from './byte-range.js';
import { errorResponse, errorResponses } from './errors.js';
import { etagMatches, newRouter, queryInt, queryNumber } from './router.js';
import type { Thumbnail } from '../services/images/thumbnails.js';
import { DEFAULT_CROP_PAD, MAX_CROP_PAD } from '../services/objects/objects.js';

/**
 * Thumbnails are immutable for their URL: the cache is keyed by (dataset id, image id, size), a
 * sample's image is fixed at ingest (changes of a dataset touch labels, tags and predictions,
 * never which file a sample is), and dataset ids are random and never reused, so a browser may
 * keep them for a year without asking again.
 */
const THUMBNAIL_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/**
 * With DATAVISOR_API_TOKEN set, images are only for the browser that asked: `public` would let a
 * shared cache (a CDN, a company proxy) store an answer to a request with the token and hand it to
 * anyone asking for the same URL without it (RFC 9111 §3.5).
 */
const THUMBNAIL_CACHE_CONTROL_PRIVATE = 'private, max-age=31536000, immutable';
/**
 * An original is the user's file, which can be edited in place: browsers keep it but revalidate
 * every use, which costs a 304 without a body.
 */
const ORIGINAL_CACHE_CONTROL = 'public, no-cache';
const ORIGINAL_CACHE_CONTROL_PRIVATE = 'private, no-cache';
/** The content type of an original comes from its name: never let a browser sniff or run it (SVG). */
const ORIGINAL_SAFETY = { 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; sandbox" };

const SIZES = ['small', 'medium', 'large', 'original'] as const;

/** Validates `?size=` at run time and describes it in /openapi.json. */
const SizeSchema = z.enum(SIZES, { error: `must be one of ${SIZES.join(', ')}` }).default('medium');

const getImage = createRoute({
  method: 'get',
  path: '/images/{dataset_id}/{sample_id}',
  summary: 'A WebP thumbnail (small 128, medium 256, large 512 px wide; never enlarged) or the original file',
  description: 'Send `If-None-Match` with a held ETag to get 304 (lists and W/ tags work). Originals answer one `Range: bytes=…` with 206 (`If-Range` with their ETag honoured), or 416 when it starts past the end.',
  request: {
    params: z.object({
      dataset_id: z.string().min(1).openapi({ param: { name: 'dataset_id', in: 'path' }, example: 'k3v7q2mzx4a5b6c7' }),
      sample_id: z.string().min(1).openapi({ param: { name: 'sample_id', in: 'path' }, example: '9' }),
    }),
    query: z.object({
      size: SizeSchema,
      exp: z.string().optional().openapi({ description: 'With DATAVISOR_API_TOKEN set: expiry (unix seconds) of the signed URL handed out by the API' }),
      sig: z.string().optional().openapi({ description: 'With DATAVISOR_API_TOKEN set: signature of this dataset, sample, size and exp; valid instead of the bearer token' }),
    }),
  },
  responses: {
    200: {
      description: 'The image, with ETag and Cache-Control',
      content: {
        'image/webp': { schema: z.string().openapi({ format: 'binary' }) },
        'image/*': { schema: z.string().openapi({ format: 'binary', description: 'size=original: the file with its own type' }) },
      },
    },
    206: {
      description: 'size=original with one satisfiable `Range: bytes=…` (and an `If-Range` naming the current ETag, if any): that range, with Content-Range',
      content: { 'image/*': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    304: { description: 'Not modified: If-None-Match matched the ETag' },
    ...errorResponses(400, 401, 403, 404, 416, 422),
  },
});

/** A crop is a thumbnail of part of the image: the thumbnail sizes only. */
const CROP_SIZES = ['small', 'medium', 'large'] as const;
const CropSizeSchema = z.enum(CROP_SIZES, { error: `must be one of ${CROP_SIZES.join(', ')}` }).default('medium');
const PadSchema = queryNumber().pipe(z.number().min(0, 'must be at least 0').max(MAX_CROP_PAD, `must be at most ${MAX_CROP_PAD}`)).default(DEFAULT_CROP_PAD);
const BOX = /^\s*(-?[\d.eE+-]+)\s*,\s*(-?[\d.eE+-]+)\s*,\s*(-?[\d.eE+-]+)\s*,\s*(-?[\d.eE+-]+)\s*$/;
/** A crop URL without the current revision may show another box tomorrow: revalidated on each use. */
const CROP_CACHE_CONTROL = 'public, no-cache';
const CROP_CACHE_CONTROL_PRIVATE = 'private, no-cache';

const cropQuery = {
  size: CropSizeSchema.openapi({ description: 'The crop\'s longer side: small 128, medium 256, large 512 px (small boxes are enlarged)' }),
  pad: PadSchema.openapi({ description: 'Context around the box: this fraction of its width and height on each side (default 0.1), clamped to the image' }),
};

const getObjectCrop = createRoute({
  method: 'get',
  path: '/images/{dataset_id}/{sample_id}/objects/{ord}',
  summary: 'A WebP crop of one annotation\'s box (the `crop_url` of the object view)',
  description:
    'Addressed by the annotation\'s position, so the box cannot be chosen freely. `rev` is the dataset revision the URL was made at: ' +
    'while it is the current one the answer is immutable, otherwise (or without it) it is revalidated on each use. ETag and 304 as thumbnails.',
  request: {
    params: z.object({
      dataset_id: z.string().min(1).openapi({ param: { name: 'dataset_id', in: 'path' }, example: 'k3v7q2mzx4a5b6c7' }),
      sample_id: z.string().min(1).openapi({ param: { name: 'sample_id', in: 'path' }, description: 'The image id of the annotation\'s sample', example: '42' }),
      ord: z.string().min(1).openapi({ param: { name: 'ord', in: 'path' }, description: 'The annotation\'s position (`position` in GraphQL)', example: '12' }),
    }),
    query: z.object({
      ...cropQuery,
      rev: queryInt(0, Number.MAX_SAFE_INTEGER).optional().openapi({ description: 'The dataset revision the URL was handed out at' }),
      exp: z.string().optional().openapi({ description: 'With DATAVISOR_API_TOKEN set: expiry of the signed URL' }),
      sig: z.string().optional().openapi({ description: 'With DATAVISOR_API_TOKEN set: signature of this dataset, object, size and exp' }),
    }),
  },
  responses: {
    200: { description: 'The crop, with ETag and Cache-Control', content: { 'image/webp': { schema: z.string().openapi({ format: 'binary' }) } } },
    304: { description: 'Not modified: If-None-Match matched the ETag' },
    ...errorResponses(400, 401, 403, 404, 422),
  },
});

const getBoxCrop = createRoute({
  method: 'get',
  path: '/images/{dataset_id}/{sample_id}/crop',
  summary: 'A WebP crop of any box of a sample\'s image',
  description: 'For boxes that are no annotation (a drawn region). Immutable: a sample\'s image never changes. Needs the bearer token when one is set (the API hands out no signed URLs for it).',
  request: {
    params: z.object({
      dataset_id: z.string().min(1).openapi({ param: { name: 'dataset_id', in: 'path' }, example: 'k3v7q2mzx4a5b6c7' }),
      sample_id: z.string().min(1).openapi({ param: { name: 'sample_id', in: 'path' }, example: '9' }),
    }),
    query: z.object({
      box: z.string().regex(BOX, 'must be four numbers x,y,w,h (pixels of the original)').openapi({ example: '10,20,100,50' }),
      ...cropQuery,
    }),
  },
  responses: {
    200: { description: 'The crop, with ETag and Cache-Control', content: { 'image/webp': { schema: z.string().openapi({ format: 'binary' }) } } },
    304: { description: 'Not modified: If-None-Match matched the ETag' },
    ...errorResponses(400, 401, 404, 422),
  },
});

/** A WebP answer (or 304) with its ETag. */
function webp(thumb: Thumbnail, ifNoneMatch: string | undefined, cacheControl: string): Response {
  if (etagMatches(ifNoneMatch, thumb.etag)) return new Response(null, { status: 304, headers: { etag: thumb.etag, 'cache-control': cacheControl } });
  return new Response(thumb.body as Uint8Array<ArrayBuffer>, { status: 200, headers: { 'content-type': thumb.contentType, etag: thumb.etag, 'cache-control': cacheControl } });
}

/**
 * The hot path of the server: a page of thumbnails is dozens of requests. The route is declared in
 * the OpenAPI registry but served by a plain handler that checks `size` with the same schema:
 * the generic validators would parse every parameter and header on each request, which cost a
 * tenth of its throughput. The path parameters are plain strings that the service looks up
 * (anything that is not an id is a 404).
 */
export function imageRoutes(dv: DataVisor) {
  const router = newRouter();
  const cache = dv.access.enabled
    ? { thumbnail: THUMBNAIL_CACHE_CONTROL_PRIVATE, original: ORIGINAL_CACHE_CONTROL_PRIVATE }
    : { thumbnail: THUMBNAIL_CACHE_CONTROL, original: ORIGINAL_CACHE_CONTROL };
  const crop = dv.access.enabled ? CROP_CACHE_CONTROL_PRIVATE : CROP_CACHE_CONTROL;
  router.openapi(getObjectCrop, async (c) => {
    const { dataset_id, sample_id, ord } = c.req.valid('param');
    const q = c.req.valid('query');
    const made = await dv.objects.crop(dataset_id, sample_id, ord, q.size, q.pad, q.rev ?? null);
    return webp(made.thumbnail, c.req.header('if-none-match'), made.immutable ? cache.thumbnail : crop) as never;
  });
  router.openapi(getBoxCrop, async (c) => {
    const { dataset_id, sample_id } = c.req.valid('param');
    const q = c.req.valid('query');
    const [x, y, w, h] = BOX.exec(q.box)!.slice(1).map(Number) as [number, number, number, number];
    const thumb = await dv.objects.cropBox(dataset_id, sample_id, { x, y, w, h }, q.size, q.pad);
    return webp(thumb, c.req.header('if-none-match'), cache.thumbnail) as never;
  });
  router.openAPIRegistry.registerPath(getImage);
  router.get('/images/:dataset_id/:sample_id', async (c) => {
    const size = SizeSchema.safeParse(c.req.query('size'));
    if (!size.success) {
      const got = c.req.query('size');
      return errorResponse('BAD_USER_INPUT', `query parameter "size" ${size.error.issues[0]?.message} (got ${JSON.stringify(got)})`);
    }
    const datasetId = c.req.param('dataset_id');
    const sampleId = c.req.param('sample_id');
    const ifNoneMatch = c.req.header('if-none-match');
    if (size.data === 'original') return original(dv, datasetId, sampleId, c.req, cache.original);
    // A memory hit needs no database query (SampleService.thumbnail) and its ETag was computed
    // when the bytes were made, so this is a map lookup and a few headers.
    const thumb = await dv.samples.thumbnail(datasetId, sampleId, size.data);
    if (etagMatches(ifNoneMatch, thumb.etag)) {
      return new Response(null, { status: 304, headers: { etag: thumb.etag, 'cache-control': cache.thumbnail } });
    }
    return new Response(thumb.body as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers: { 'content-type': thumb.contentType, etag: thumb.etag, 'cache-control': cache.thumbnail },
    });
  });
  return router;
}

/**
 * An original, whole or one byte range of it (`Range`, `If-Range`; byte-range.ts): local files and
 * bucket objects alike, since every store reads ranges. The preconditions come first (304), as
 * RFC 9110 §13.2.2 orders them.
 */
async function original(
  dv: DataVisor,
  datasetId: string,
  sampleId: string,
  req: { method: string; header(name: string): string | undefined },
  cacheControl: string,
): Promise<Response> {
  // Local file or S3/GCS object: type, size and ETag (mtime-size locally, the object's in a bucket).
  const image = await dv.samples.openOriginal(datasetId, sampleId);
  if (etagMatches(req.header('if-none-match'), image.etag)) {
    return new Response(null, { status: 304, headers: { etag: image.etag, 'cache-control': cacheControl } });
  }
  // DATAVISOR_PRESIGN=1: the bucket serves the bytes; the URL expires, so the redirect is not cached.
  if (image.presignedUrl) {
    return new Response(null, { status: 302, headers: { location: image.presignedUrl, 'cache-control': 'private, no-store' } });
  }
  const headers: Record<string, string> = {
    'content-type': image.contentType,
    'content-length': String(image.size),
    'accept-ranges': 'bytes',
    etag: image.etag,
    'cache-control': cacheControl,
    ...ORIGINAL_SAFETY,
  };
  // A HEAD answer has no body: opening the file would only leak its descriptor (or a connection).
  // Range is defined for GET only (RFC 9110 §14.2), so HEAD describes the whole file.
  if (req.method === 'HEAD') return new Response(null, { status: 200, headers });
  const range = decideRange(req.header('range'), req.header('if-range'), image.size, image.etag);
  if (range.kind === 'unsatisfiable') {
    const res = errorResponse(
      'BAD_USER_INPUT',
      `Range ${JSON.stringify(req.header('range'))} selects no byte of this ${image.size}-byte file: ` +
        (image.size === 0 ? 'it is empty, ask without Range' : `ask for bytes 0 to ${image.size - 1}`),
      416,
    );
    res.headers.set('content-range', `bytes */${image.size}`);
    res.headers.set('accept-ranges', 'bytes');
    return res;
  }
  if (range.kind === 'full') return new Response(Readable.toWeb(await image.open()) as ReadableStream<Uint8Array>, { status: 200, headers });
  headers['content-range'] = `bytes ${range.start}-${range.end}/${image.size}`;
  headers['content-length'] = String(range.end - range.start + 1);
  const body = Readable.toWeb(await image.open({ start: range.start, end: range.end })) as ReadableStream<Uint8Array>;
  return new Response(body, { status: 206, headers });
}
