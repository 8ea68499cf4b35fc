import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH, dist, refusal, startSecured, TOKEN, type Harness } from './helpers.js';

/**
 * Image URLs handed out by the API (REST samples, GraphQL thumbnailUrl/imageUrl) carry a
 * signature for exactly their dataset, sample and size, so they work without the token, as a
 * browser's <img> fetches them; anything else answers 403.
 */

const { AccessService } = dist<typeof import('../../dist/services/access.js')>('services/access.js');

let h: Harness;
let id: string;
let otherId: string;
let items: { id: number; thumbnail_url: string; image_url: string; thumbnail_path: string }[];

beforeAll(async () => {
  h = await startSecured();
  id = await h.ingest();
  otherId = await h.ingest(undefined, undefined, { datasetName: 'second' });
  const res = await fetch(`${h.base}/samples?dataset_id=${id}&limit=10`, { headers: AUTH });
  items = ((await res.json()) as { items: typeof items }).items;
});

afterAll(async () => {
  await h?.close();
});

/** The URL with one query parameter replaced. */
function withParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
}

async function expectForbidden(url: string, why: RegExp) {
  const res = await fetch(url);
  const r = await refusal(res);
  expect(r, url).toMatchObject({ status: 403, code: 'FORBIDDEN' });
  expect(r.message).toMatch(why);
  expect(res.headers.get('cache-control')).toBe('no-store');
}

describe('URLs handed out by the API', () => {
  test('REST samples: thumbnail_url, image_url and thumbnail_path are signed', () => {
    expect(items).toHaveLength(10);
    for (const s of items) {
      expect(s.thumbnail_url).toMatch(new RegExp(`^${h.base}/images/${id}/${s.id}\\?size=medium&exp=\\d+&sig=[\\w-]{43}$`));
      expect(s.image_url).toMatch(new RegExp(`^${h.base}/images/${id}/${s.id}\\?size=original&exp=\\d+&sig=[\\w-]{43}$`));
      expect(h.base + s.thumbnail_path).toBe(s.thumbnail_url);
    }
  });

  test('they work without the token: every thumbnail and original', async () => {
    for (const s of items) {
      const thumb = await fetch(s.thumbnail_url);
      expect(thumb.status).toBe(200);
      expect(thumb.headers.get('content-type')).toBe('image/webp');
      // Only the browser that asked may keep it: a shared cache would hand it to anyone.
      expect(thumb.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
      expect((await thumb.arrayBuffer()).byteLength).toBeGreaterThan(0);
      const original = await fetch(s.image_url);
      expect(original.status).toBe(200);
      expect(original.headers.get('content-type')).toBe('image/jpeg');
      expect(original.headers.get('cache-control')).toBe('private, no-cache');
      await original.arrayBuffer();
    }
  });

  test('a signed URL revalidates to 304 like any other', async () => {
    const first = await fetch(items[0]!.thumbnail_url);
    await first.arrayBuffer();
    const again = await fetch(items[0]!.thumbnail_url, { headers: { 'if-none-match': first.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  test('GraphQL thumbnailUrl (every size) and imageUrl are signed the same way and work without the token', async () => {
    const res = await fetch(`${h.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify({
        query: `{ samples(datasetId: "${id}", first: 3) { edges { node { sampleId small: thumbnailUrl(size: SMALL) medium: thumbnailUrl large: thumbnailUrl(size: LARGE) imageUrl } } } }`,
      }),
    });
    const body = (await res.json()) as { data: { samples: { edges: { node: Record<string, string> & { sampleId: number } }[] } } };
    const nodes = body.data.samples.edges.map((e) => e.node);
    expect(nodes).toHaveLength(3);
    // One function builds every URL: REST and GraphQL hand out the same one for the same image.
    expect(nodes[0]!.medium).toBe(items[0]!.thumbnail_url);
    for (const n of nodes) {
      for (const [size, url] of [['small', n.small], ['medium', n.medium], ['large', n.large], ['original', n.imageUrl]] as const) {
        expect(url).toMatch(new RegExp(`/images/${id}/${n.sampleId}\\?size=${size}&exp=\\d+&sig=`));
        const img = await fetch(url!);
        expect(img.status, `${size} ${url}`).toBe(200);
        await img.arrayBuffer();
      }
    }
  });
});

describe('refusals', () => {
  test('no signature and no token: 401, as every route', async () => {
    const res = await fetch(`${h.base}/images/${id}/${items[0]!.id}?size=medium`);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await refusal(res)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });

  test('a tampered signature: 403', async () => {
    const url = items[0]!.thumbnail_url;
    const sig = new URL(url).searchParams.get('sig')!;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    await expectForbidden(withParam(url, 'sig', flipped), /not valid/);
    await expectForbidden(withParam(url, 'sig', sig.slice(0, -1)), /not valid/);
    await expectForbidden(withParam(url, 'sig', `${sig}A`), /not valid/);
    await expectForbidden(withParam(url, 'sig', ''), /not valid/);
    // Base64url's last character has spare bits: a text decoding to the same bytes is still refused.
    const last = sig.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(Buffer.from(sig.slice(0, -1) + twin, 'base64url')).toEqual(Buffer.from(sig, 'base64url'));
    await expectForbidden(withParam(url, 'sig', sig.slice(0, -1) + twin), /not valid/);
  });

  test('a pushed-back expiry: 403 (exp is signed)', async () => {
    const url = items[0]!.thumbnail_url;
    const exp = Number(new URL(url).searchParams.get('exp'));
    await expectForbidden(withParam(url, 'exp', String(exp + 86_400)), /not valid/);
    await expectForbidden(withParam(url, 'exp', `0${exp}`), /not valid/);
    await expectForbidden(withParam(url, 'exp', 'soon'), /not valid/);
  });

  test('a signature for another size: 403', async () => {
    const url = items[0]!.thumbnail_url;
    for (const size of ['small', 'large', 'original']) await expectForbidden(withParam(url, 'size', size), /not valid/);
    // Dropping size= means medium, which this one was made for.
    const implicit = new URL(url);
    implicit.searchParams.delete('size');
    expect((await fetch(implicit)).status).toBe(200);
    // An original's signature does not open a thumbnail.
    await expectForbidden(withParam(items[0]!.image_url, 'size', 'medium'), /not valid/);
  });

  test('a signature for another sample or another dataset: 403', async () => {
    const [a, b] = items;
    const sig = new URL(a!.thumbnail_url).search;
    await expectForbidden(`${h.base}/images/${id}/${b!.id}${sig}`, /not valid/);
    await expectForbidden(`${h.base}/images/${otherId}/${a!.id}${sig}`, /not valid/);
    // The same sample id written otherwise is another path, not the signed one.
    await expectForbidden(`${h.base}/images/${id}/0${a!.id}${sig}`, /not valid/);
  });

  test('an expired signature: 403 naming the expiry', async () => {
    const past = Math.floor(Date.now() / 1000) - 1;
    const query = h.dv.access.signImagePath(id, items[0]!.id, 'medium', past);
    await expectForbidden(`${h.base}/images/${id}/${items[0]!.id}?size=medium&${query}`, /expired at .*fresh one/);
    // The same signature made to end in the future works: the refusal above was the expiry alone.
    const future = h.dv.access.signImagePath(id, items[0]!.id, 'medium', past + 60);
    expect((await fetch(`${h.base}/images/${id}/${items[0]!.id}?size=medium&${future}`)).status).toBe(200);
  });

  test('the token works on /images without a signature, and a wrong token does not', async () => {
    expect((await fetch(`${h.base}/images/${id}/${items[0]!.id}?size=small`, { headers: AUTH })).status).toBe(200);
    const wrong = await fetch(`${h.base}/images/${id}/${items[0]!.id}?size=small`, { headers: { authorization: 'Bearer nope' } });
    expect(await refusal(wrong)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });

  test('an unknown sample with a valid signature for it is still a 404, not a leak of anything else', async () => {
    const query = h.dv.access.signImagePath(id, 999_999_999, 'small', Math.floor(Date.now() / 1000) + 60);
    const res = await fetch(`${h.base}/images/${id}/999999999?size=small&${query}`);
    expect((await refusal(res)).status).toBe(404);
  });
});

describe('cached pages of signed URLs', () => {
  test('a page asked again once its URLs\' expiry has moved on gets fresh, working URLs', async () => {
    // TTL 4 s: the expiry moves every second, and the page cache keys on it.
    const short = await startSecured({ DATAVISOR_IMAGE_URL_TTL: '4' });
    try {
      const ds = await short.ingest();
      const page = async () => {
        const res = await fetch(`${short.base}/samples?dataset_id=${ds}&limit=2`, { headers: AUTH });
        return ((await res.json()) as { items: typeof items }).items;
      };
      const exp = (url: string) => Number(new URL(url).searchParams.get('exp'));
      const first = await page();
      await new Promise((r) => setTimeout(r, 1100));
      const later = await page();
      expect(exp(later[0]!.thumbnail_url)).toBeGreaterThan(exp(first[0]!.thumbnail_url));
      expect(exp(later[0]!.thumbnail_url) * 1000).toBeGreaterThanOrEqual(Date.now() + 2500);
      const thumb = await fetch(later[0]!.thumbnail_url);
      expect(thumb.status).toBe(200);
      await thumb.arrayBuffer();
    } finally {
      await short.close();
    }
  });
});

describe('AccessService', () => {
  const access = new AccessService({ token: TOKEN, imageUrlTtl: 3600 });

  test('expiry: at least the TTL ahead, at most TTL/4 more, the same for a quarter of the TTL', () => {
    const t0 = Date.UTC(2030, 0, 1, 12, 0, 0); // on a 900 s boundary
    expect(access.imageExpiry(t0)).toBe(t0 / 1000 + 3600);
    expect(access.imageExpiry(t0 + 1)).toBe(t0 / 1000 + 3600 + 900);
    for (let dt = 1; dt <= 900_000; dt += 7_919) {
      const exp = access.imageExpiry(t0 + dt);
      expect(exp).toBe(t0 / 1000 + 4500);
      expect(exp * 1000 - (t0 + dt)).toBeGreaterThanOrEqual(3600_000);
      expect(exp * 1000 - (t0 + dt)).toBeLessThanOrEqual(4500_000);
    }
    // A tiny TTL still gets whole seconds.
    const tiny = new AccessService({ token: TOKEN, imageUrlTtl: 1 });
    expect(tiny.imageExpiry(t0 + 300)).toBe(t0 / 1000 + 2);
  });

  test('signatures: ok, expired, invalid', () => {
    const q = new URLSearchParams(access.signImagePath('ds', 7, 'small', 2_000_000_000));
    const [exp, sig] = [q.get('exp')!, q.get('sig')!];
    expect(access.verifyImageSignature('ds', '7', 'small', exp, sig, 1_999_999_999_000)).toBe('ok');
    expect(access.verifyImageSignature('ds', '7', 'small', exp, sig, 2_000_000_000_000)).toBe('expired');
    expect(access.verifyImageSignature('ds', '7', 'large', exp, sig, 0)).toBe('invalid');
    expect(access.verifyImageSignature('ds', '8', 'small', exp, sig, 0)).toBe('invalid');
    expect(access.verifyImageSignature('dt', '7', 'small', exp, sig, 0)).toBe('invalid');
    expect(access.verifyImageSignature('ds', '7', 'small', undefined, sig, 0)).toBe('invalid');
    expect(access.verifyImageSignature('ds', '7', 'small', exp, undefined, 0)).toBe('invalid');
    // Another token, another key: its URLs do not open this server's images.
    const other = new AccessService({ token: `${TOKEN}-rotated`, imageUrlTtl: 3600 });
    expect(other.verifyImageSignature('ds', '7', 'small', exp, sig, 0)).toBe('invalid');
    // The token is not the key: a signature made with the token itself is refused.
    const naive = createHmac('sha256', TOKEN).update(`ds\n7\nsmall\n${exp}`).digest('base64url');
    expect(access.verifyImageSignature('ds', '7', 'small', exp, naive, 0)).toBe('invalid');
  });

  test('the bearer check', () => {
    expect(access.checkAuthorization(`Bearer ${TOKEN}`)).toBe(true);
    expect(access.checkAuthorization(`bearer ${TOKEN}`)).toBe(true);
    for (const header of [undefined, null, '', 'Bearer', 'Bearer ', `Bearer ${TOKEN}1`, `Bearer ${TOKEN.slice(1)}`, `Token ${TOKEN}`, TOKEN]) {
      expect(access.checkAuthorization(header), String(header)).toBe(false);
    }
    const open = new AccessService({ token: undefined, imageUrlTtl: 3600 });
    expect(open.enabled).toBe(false);
    expect(open.checkAuthorization(undefined)).toBe(true);
    expect(open.imageQuerySuffix('ds', 7, 'small')).toBe('');
  });
});
