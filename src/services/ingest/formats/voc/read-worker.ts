import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { XmlRead, XmlReadRequest, XmlReadResponse } from './xml-reads.js';
import { decodeXml, VocXmlError, VocXmlParser } from './voc-xml.js';

/**
 * The VOC reader's read thread: each XML file of a batch read whole with plain synchronous open,
 * fstat, read and close, then parsed. Through libuv's pool every one of those calls was a hand-off
 * and a callback on the main thread, which cost more than the ~1 KB reads themselves; here the
 * main thread is left with the records and DuckDB's appends (docs/formats.md).
 */

const parser = new VocXmlParser();

function readFile(file: string, maxBytes: number): Uint8Array | string {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > maxBytes) return `larger than ${maxBytes} bytes`;
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const n = fs.readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return buf.subarray(0, at);
  } finally {
    fs.closeSync(fd);
  }
}

function readOne(file: string, maxBytes: number): XmlRead {
  const bytes = readFile(file, maxBytes);
  if (typeof bytes === 'string') return { bytes: 0, doc: null, error: bytes };
  try {
    return { bytes: bytes.byteLength, doc: parser.parse(decodeXml(bytes)), error: null };
  } catch (e) {
    if (!(e instanceof VocXmlError)) throw e;
    return { bytes: bytes.byteLength, doc: null, error: e.message };
  }
}

parentPort!.on('message', (req: XmlReadRequest) => {
  const files: XmlRead[] = [];
  try {
    for (const f of req.files) files.push(typeof f === 'string' ? readOne(f, req.maxBytes) : { bytes: 0, doc: null, error: f.skip });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const failed: XmlReadResponse = { kind: 'failed', id: req.id, code: err?.code ?? null, message: err instanceof Error ? err.message : String(e) };
    parentPort!.postMessage(failed);
    return;
  }
  const res: XmlReadResponse = { kind: 'read', id: req.id, files };
  parentPort!.postMessage(res);
});
