/**
 * Reads a WebP file's pixel size from its header without decoding it, and rejects files whose RIFF
 * length disagrees with their byte length, so a torn or truncated cache file is never served.
 * Layouts per https://developers.google.com/speed/webp/docs/riff_container.
 */
export function readWebpSize(buf: Buffer): { width: number; height: number } | undefined {
  if (buf.length < 30) return undefined;
  if (buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WEBP') {
    return undefined;
  }
  if (buf.readUInt32LE(4) + 8 !== buf.length) return undefined;
  switch (buf.toString('latin1', 12, 16)) {
    case 'VP8 ': {
      // Lossy: 3-byte frame tag, then the start code 9d 01 2a, then 14-bit width and height.
      if (buf[23] !== 0x9d || buf[24] !== 0x01 || buf[25] !== 0x2a) return undefined;
      return { width: buf.readUInt16LE(26) & 0x3fff, height: buf.readUInt16LE(28) & 0x3fff };
    }
    case 'VP8L': {
      // Lossless: signature 0x2f, then width-1 and height-1 as 14-bit fields.
      if (buf[20] !== 0x2f) return undefined;
      const bits = buf.readUInt32LE(21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    case 'VP8X': {
      // Extended (alpha, animation): canvas width-1 and height-1 as 24-bit fields.
      return { width: buf.readUIntLE(24, 3) + 1, height: buf.readUIntLE(27, 3) + 1 };
    }
    default:
      return undefined;
  }
}
