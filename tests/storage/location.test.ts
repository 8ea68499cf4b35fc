import { describe, expect, it } from 'vitest';
import { rechunk } from '../../dist/services/storage/index.js';
import { listPages } from '../../dist/services/storage/list-pages.js';
import { formatLocation, imageKey, isWithinBucketRoot, parseLocation, type BucketLocation } from '../../dist/services/storage/location.js';
import { backoffMs } from '../../dist/services/storage/retry.js';

const bucket = (text: string) => parseLocation('x', text) as BucketLocation;
const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'ok';
};

describe('bucket URLs', () => {
  it('parses and normalizes s3:// and gs:// URLs; anything else is a local path', () => {
    expect(parseLocation('x', 's3://b-1/a/b.json')).toEqual({ kind: 's3', bucket: 'b-1', key: 'a/b.json' });
    expect(parseLocation('x', 'GS://my.bucket//a///b/')).toEqual({ kind: 'gs', bucket: 'my.bucket', key: 'a/b' });
    expect(parseLocation('x', 's3://bucket')).toEqual({ kind: 's3', bucket: 'bucket', key: '' });
    expect(parseLocation('x', 's3://bucket/')).toEqual({ kind: 's3', bucket: 'bucket', key: '' });
    expect(parseLocation('x', '/data/coco')).toEqual({ kind: 'local', path: '/data/coco' });
    expect(parseLocation('x', 'relative/dir')).toEqual({ kind: 'local', path: 'relative/dir' });
    expect(formatLocation(bucket('S3://b-1//a/b/'))).toBe('s3://b-1/a/b');
    expect(formatLocation(bucket('gs://bkt'))).toBe('gs://bkt');
  });

  it('refuses `.` and `..` segments (FORBIDDEN), bad buckets, other schemes and NUL (BAD_USER_INPUT)', () => {
    expect(codeOf(() => parseLocation('x', 's3://b-1/a/../b'))).toBe('FORBIDDEN');
    expect(codeOf(() => parseLocation('x', 's3://b-1/..'))).toBe('FORBIDDEN');
    expect(codeOf(() => parseLocation('x', 'gs://b-1/./a'))).toBe('FORBIDDEN');
    expect(codeOf(() => parseLocation('x', 's3://'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => parseLocation('x', 's3://ab/k'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => parseLocation('x', 's3://bad bucket/k'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => parseLocation('x', 's3://-bucket/k'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => parseLocation('x', 'http://example.com/a.json'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => parseLocation('x', 's3://bucket/a\0b'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => parseLocation('x', ''))).toBe('BAD_USER_INPUT');
  });

  it('a root covers itself and what is under it, never a sibling that shares its prefix', () => {
    const root = bucket('s3://b-1/p');
    expect(isWithinBucketRoot(root, bucket('s3://b-1/p'))).toBe(true);
    expect(isWithinBucketRoot(root, bucket('s3://b-1/p/'))).toBe(true);
    expect(isWithinBucketRoot(root, bucket('s3://b-1/p/q/r.json'))).toBe(true);
    expect(isWithinBucketRoot(root, bucket('s3://b-1/p2'))).toBe(false);
    expect(isWithinBucketRoot(root, bucket('s3://b-1/p2/x'))).toBe(false);
    expect(isWithinBucketRoot(root, bucket('s3://b-1'))).toBe(false);
    expect(isWithinBucketRoot(root, bucket('s3://b-2/p/x'))).toBe(false);
    expect(isWithinBucketRoot(root, bucket('gs://b-1/p/x'))).toBe(false);
    expect(isWithinBucketRoot(bucket('gs://b-1'), bucket('gs://b-1/any/thing'))).toBe(true);
  });

  it('joins file_names to a bucket folder, refusing the names a local folder refuses', () => {
    const dir = bucket('s3://b-1/images');
    expect(imageKey(dir, 'a.jpg')).toBe('images/a.jpg');
    expect(imageKey(dir, 'sub/./a.jpg')).toBe('images/sub/a.jpg');
    expect(imageKey(bucket('s3://b-1'), 'a.jpg')).toBe('a.jpg');
    for (const bad of ['../a.jpg', 'x/../../a.jpg', '/etc/passwd', 'a\\b.jpg', 'a\0.jpg', 'a//b.jpg', '', 'C:/x.jpg', '.']) {
      expect([bad, codeOf(() => imageKey(dir, bad))]).toEqual([bad, 'FORBIDDEN']);
    }
  });
});

describe('streaming helpers', () => {
  it('regroups small network chunks into blocks of at least the block size, passing large ones through', async () => {
    async function* source() {
      for (let i = 0; i < 10; i++) yield new Uint8Array(3).fill(i);
      yield new Uint8Array(20).fill(99);
      yield new Uint8Array(30).fill(98);
    }
    const out: Uint8Array[] = [];
    for await (const c of rechunk(source(), 8)) out.push(c);
    expect(out.map((c) => c.byteLength)).toEqual([9, 9, 9, 23, 30]);
    expect(Buffer.concat(out)).toEqual(Buffer.concat([...Array.from({ length: 10 }, (_, i) => Buffer.alloc(3, i)), Buffer.alloc(20, 99), Buffer.alloc(30, 98)]));
  });

  it('lists page after page, and stops without fetching ahead when the consumer stops at once', async () => {
    const fetched: (string | undefined)[] = [];
    const pages: Record<string, { names: string[]; next: string | undefined }> = {
      first: { names: ['a', 'b'], next: 't1' }, t1: { names: [], next: 't2' }, t2: { names: ['c'], next: undefined },
    };
    const fetchPage = async (t: string | undefined) => {
      fetched.push(t);
      return pages[t ?? 'first']!;
    };
    const all: string[] = [];
    for await (const n of listPages(fetchPage)) all.push(n);
    expect(all).toEqual(['a', 'b', 'c']);
    expect(fetched).toEqual([undefined, 't1', 't2']);
    fetched.length = 0;
    for await (const n of listPages(fetchPage)) {
      expect(n).toBe('a');
      break;
    }
    expect(fetched).toEqual([undefined]);
  });

  it('backs off exponentially with full jitter, capped', () => {
    const policy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 250 };
    for (let i = 0; i < 200; i++) {
      expect(backoffMs(policy, 1)).toBeLessThan(100);
      expect(backoffMs(policy, 2)).toBeLessThan(200);
      expect(backoffMs(policy, 5)).toBeLessThan(250);
    }
  });
});
