import path from 'node:path';
import sharp from 'sharp';
import { DataVisorError } from '../services/errors.js';
import type { ImagePlan } from './plan.js';
import { mulberry32 } from './rng.js';

/** Two images in flight per core keeps both cores of a small machine busy (see MEASURED.md). */
const RENDER_CONCURRENCY = 4;
const JPEG_QUALITY = 85;

export async function renderImages(images: readonly ImagePlan[], outDir: string): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < images.length) {
      const image = images[next++]!;
      try {
        await renderImage(image, path.join(outDir, image.fileName));
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  // Wait for every worker before reporting, so nothing still writes into a folder being removed.
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(RENDER_CONCURRENCY, images.length) }, worker),
  );
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw new DataVisorError('INTERNAL', 'could not draw the demo images', { cause: rejected.reason });
}

/**
 * A coarse field of gradient plus noise, stretched smoothly, gives a mottled photo-like background
 * that still compresses well. The field goes into the SVG as a tiny PNG because one librsvg pass
 * is about three times cheaper than a libvips resize plus a composite of the shapes on top.
 */
async function renderImage(image: ImagePlan, file: string): Promise<void> {
  const { width, height } = image;
  const cell = 16;
  const gw = Math.ceil(width / cell) + 1;
  const gh = Math.ceil(height / cell) + 1;
  const rng = mulberry32(image.noiseSeed);
  const from = hexToRgb(image.backgroundFrom);
  const to = hexToRgb(image.backgroundTo);
  const angle = (image.backgroundAngle * Math.PI) / 180;
  const ux = Math.cos(angle);
  const uy = Math.sin(angle);
  const span = Math.abs(ux) * gw + Math.abs(uy) * gh;
  const offset = Math.min(0, ux * gw) + Math.min(0, uy * gh);
  const field = Buffer.alloc(gw * gh * 3);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const t = (x * ux + y * uy - offset) / span;
      const shade = (rng() - 0.5) * 28;
      for (let c = 0; c < 3; c++) {
        const v = from[c]! + (to[c]! - from[c]!) * t + shade + (rng() - 0.5) * 8;
        field[(y * gw + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  const png = await sharp(field, { raw: { width: gw, height: gh, channels: 3 } }).png().toBuffer();
  const defs = image.annotations
    .map((a, k) => {
      const light = mixWithWhite(a.color, 0.45);
      return `<linearGradient id="g${k}" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${light}"/><stop offset="1" stop-color="${a.color}"/></linearGradient>`;
    })
    .join('');
  const body = image.annotations.map((a, k) => `<g fill="url(#g${k})">${a.svg}</g>`).join('');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">` +
    `<defs>${defs}</defs>` +
    `<image width="${width}" height="${height}" preserveAspectRatio="none" xlink:href="data:image/png;base64,${png.toString('base64')}"/>` +
    `${body}</svg>`;
  await sharp(Buffer.from(svg)).jpeg({ quality: JPEG_QUALITY }).toFile(file);
}

function hexToRgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

function mixWithWhite(hex: string, amount: number): string {
  const rgb = hexToRgb(hex).map((c) => Math.round(c + (255 - c) * amount));
  return `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}
