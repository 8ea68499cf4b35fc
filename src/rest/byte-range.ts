/**
 * `Range` and `If-Range` of a GET for a representation of `size` bytes (RFC 9110 §14.2, §13.1.5).
 *
 * - `full`: answer the whole thing with 200: no Range, a unit other than `bytes`, a malformed
 *   header, several ranges (a multipart/byteranges answer is not worth its complexity for images:
 *   browsers and video players ask for one range), or an If-Range that does not match.
 * - `partial`: answer 206 with bytes `start`..`end` (inclusive; `end` clamped to the last byte).
 * - `unsatisfiable`: answer 416, with a Content-Range that names the size.
 */
export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const FULL: RangeDecision = { kind: 'full' };
/** `first-last`, `first-` or `-suffix`, digits only (RFC 9110 §14.1.2). */
const RANGE_SPEC = /^\s*(\d*)\s*-\s*(\d*)\s*$/;

export function decideRange(range: string | undefined, ifRange: string | undefined, size: number, etag: string): RangeDecision {
  if (range === undefined) return FULL;
  // If-Range names the representation the client holds part of: only a strong ETag equal to ours
  // lets the range apply. A date cannot be ours (originals carry no Last-Modified), nor a weak tag.
  if (ifRange !== undefined && (ifRange.trim() !== etag || etag.startsWith('W/'))) return FULL;
  const eq = range.indexOf('=');
  if (eq === -1 || range.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL;
  const specs = range.slice(eq + 1).split(',');
  if (specs.length !== 1) return FULL;
  const m = RANGE_SPEC.exec(specs[0]!);
  if (!m || (m[1] === '' && m[2] === '')) return FULL;
  if (m[1] === '') {
    // The last `suffix` bytes; a suffix of 0 selects nothing.
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? Infinity : Number(m[2]);
  if (last < start) return FULL;
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}
