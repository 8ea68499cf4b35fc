import path from 'node:path';
import { BadInputError, ForbiddenError } from '../errors.js';
import { isBucketUrl, isSafeRelativeName } from './paths.js';

export { isBucketUrl };

/**
 * Where a dataset's files live: a local path, or an object key in an S3 or GCS bucket. Bucket
 * URLs are normalized once here (lower-case scheme, no empty segments, no trailing slash) so
 * that the data-roots check is a plain prefix comparison and stored URLs compare equal.
 */

export type BucketKind = 's3' | 'gs';
export type StoreKind = 'local' | BucketKind;

export interface LocalLocation {
  kind: 'local';
  path: string;
}

export interface BucketLocation {
  kind: BucketKind;
  bucket: string;
  /** Object key, or key prefix of a "folder"; '' is the whole bucket. Never starts or ends with '/'. */
  key: string;
}

export type Location = LocalLocation | BucketLocation;

const BUCKET_URL = /^(s3|gs):\/\/([^/]*)(?:\/(.*))?$/is;
/** S3 and GCS names (S3's legacy buckets may have capitals and underscores; dots appear in both). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/i;

/**
 * Parses a path or bucket URL given by a user (request field, setting). `.` and `..` segments
 * are refused in bucket URLs rather than resolved: S3 and GCS keys are plain strings, so
 * `a/../b` names an object of its own, and HTTP clients that normalize URLs would fetch another.
 */
export function parseLocation(label: string, text: string): Location {
  if (typeof text !== 'string' || text.trim() === '') throw new BadInputError(`${label} must be a non-empty path`);
  if (text.includes('\0')) throw new BadInputError(`${label} must not contain a NUL byte`);
  const m = BUCKET_URL.exec(text);
  if (!m) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
      throw new BadInputError(`${label} ${JSON.stringify(text)}: only local paths, s3:// and gs:// URLs are supported`);
    }
    return { kind: 'local', path: text };
  }
  const kind = m[1]!.toLowerCase() as BucketKind;
  const bucket = m[2]!;
  if (!BUCKET_NAME.test(bucket)) {
    throw new BadInputError(`${label} ${JSON.stringify(text)} does not name a valid bucket (${kind}://bucket/key)`);
  }
  const segments = (m[3] ?? '').split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..')) {
    throw new ForbiddenError(`${label} ${JSON.stringify(text)}: "." and ".." segments are not allowed in bucket URLs`);
  }
  return { kind, bucket, key: segments.join('/') };
}

export function formatLocation(loc: Location): string {
  if (loc.kind === 'local') return loc.path;
  return loc.key === '' ? `${loc.kind}://${loc.bucket}` : `${loc.kind}://${loc.bucket}/${loc.key}`;
}

/** `child` is `root` or under `root/` (so `s3://b/p` covers `s3://b/p/x` but not `s3://b/p2`). */
export function isWithinBucketRoot(root: BucketLocation, child: BucketLocation): boolean {
  if (root.kind !== child.kind || root.bucket !== child.bucket) return false;
  return root.key === '' || child.key === root.key || child.key.startsWith(`${root.key}/`);
}

/**
 * The key of an image in a bucket "folder". `file_name` comes from the annotation file, so it is
 * untrusted: the same names are refused as for local folders (absolute, `..`, `\`, NUL, empty
 * segments). `.` segments are dropped, as path.join does for a local folder.
 */
export function imageKey(dir: BucketLocation, fileName: string): string {
  if (!isSafeRelativeName(fileName)) {
    throw new ForbiddenError(`file_name ${JSON.stringify(fileName)} points outside the dataset's image folder`);
  }
  const rel = fileName.split('/').filter((s) => s !== '.').join('/');
  if (rel === '') throw new ForbiddenError(`file_name ${JSON.stringify(fileName)} names no file`);
  return dir.key === '' ? rel : `${dir.key}/${rel}`;
}

/** The last segment of a location, for default dataset names. */
export function baseName(loc: Location): string {
  return loc.kind === 'local' ? path.basename(loc.path) : (loc.key.split('/').at(-1) ?? loc.bucket);
}
