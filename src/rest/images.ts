import fs from 'node:fs';
import { Readable } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import mime from 'mime-types';
import type { DataVisor } from '../services/app.js';
import { DataVisorError } from '../services/errors.js';
import { errorResponses } from './errors.js';
import { newRouter } from './router.js';

/**
 * Thumbnails are immutable for their URL: the cache is keyed by (dataset id, image id, size),
 * datasets never change after ingest, and dataset ids are random and never reused, so a browser
 * may keep them for a year without asking again.
 */
const THUMBNAIL_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/**
 * An original is the user's file, which can be edited in place: browsers keep it but revalidate
 * every use, which costs a 304 without a body.
 */
const ORIGINAL_CACHE_CONTROL = 'public, no-cache';
/** The content type of an original comes from its name: never let a browser sniff or run it (SVG). */
const ORIGINAL_SAFETY = { 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; sandbox" };

const SIZES = ['small', 'medium', 'large', 'original'] as const;

const getImage = createRoute({
  method: 'get',
  path: '/images/{dataset_id}/{sample_id}',
  summary: 'A WebP thumbnail (small 128, medium 256, large 512 px wide; never enlarged) or the original file',
  request: {
    params: z.object({
      dataset_id: z.string().min(1).openapi({ param: { name: 'dataset_id', in: 'path' }, example: 'k3v7q2mzx4a5b6c7' }),
      sample_id: z.string().min(1).openapi({ param: { name: 'sample_id', in: 'path' }, example: '9' }),
    }),
    query: z.object({
      size: z.enum(SIZES, { error: `must be one of ${SIZES.join(', ')}` }).default('medium'),
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
    304: { description: 'Not modified: If-None-Match matched the ETag' },
    ...errorResponses(400, 403, 404, 422),
  },
});

export function imageRoutes(dv: DataVisor) {
  return newRouter().openapi(getImage, async (c) => {
    const { dataset_id, sample_id } = c.req.valid('param');
    const { size } = c.req.valid('query');
    // Read directly rather than validated: a header schema would copy every header per request.
    const ifNoneMatch = c.req.header('if-none-match');
    if (size === 'original') return original(dv, dataset_id, sample_id, ifNoneMatch, c.req.method === 'HEAD');
    // The hot path: a memory hit needs no database query (SampleService.thumbnail) and the ETag
    // was computed when the bytes were made, so this is a map lookup and a few headers.
    const thumb = await dv.samples.thumbnail(dataset_id, sample_id, size);
    if (etagMatches(ifNoneMatch, thumb.etag)) {
      return new Response(null, { status: 304, headers: { etag: thumb.etag, 'cache-control': THUMBNAIL_CACHE_CONTROL } });
    }
    return new Response(thumb.body as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers: { 'content-type': thumb.contentType, etag: thumb.etag, 'cache-control': THUMBNAIL_CACHE_CONTROL },
    });
  });
}

async function original(dv: DataVisor, datasetId: string, sampleId: string, ifNoneMatch: string | undefined, head: boolean): Promise<Response> {
  const { sample, path: file } = await dv.samples.imageFile(datasetId, sampleId);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (cause) {
    throw new DataVisorError('FILE_NOT_FOUND', `The image file of sample ${sample.id} is gone`, { cause });
  }
  // Size and modification time change whenever the file is rewritten, as in nginx's ETags.
  const etag = `"${Math.floor(st.mtimeMs).toString(16)}-${st.size.toString(16)}"`;
  if (etagMatches(ifNoneMatch, etag)) {
    return new Response(null, { status: 304, headers: { etag, 'cache-control': ORIGINAL_CACHE_CONTROL } });
  }
  const headers = {
    'content-type': mime.lookup(file) || 'application/octet-stream',
    'content-length': String(st.size),
    etag,
    'cache-control': ORIGINAL_CACHE_CONTROL,
    ...ORIGINAL_SAFETY,
  };
  // A HEAD answer has no body: opening the file would only leak its descriptor.
  if (head) return new Response(null, { status: 200, headers });
  const body = Readable.toWeb(fs.createReadStream(file)) as ReadableStream<Uint8Array>;
  return new Response(body, { status: 200, headers });
}

/**
 * If-None-Match per RFC 9110 §13.1.2: `*` or a list of entity tags, compared weakly (a `W/` prefix
 * is ignored), since a 304 only tells the client that what it holds is still good.
 */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  for (const part of header.split(',')) {
    const tag = part.trim();
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === etag) return true;
  }
  return false;
}
