import path from 'node:path';
import { DataVisorError } from '../errors.js';
import type { InputLocation } from '../storage/index.js';

/**
 * YOLO predictions as `yolo predict save_txt=True save_conf=True` writes them: a folder of `*.txt`,
 * one per image, each line `class cx cy w h conf` (normalised centre and size). The files are read
 * in name order, 16 at a time; each line becomes a row matched to a sample by the file's stem in SQL
 * (db/predictions.ts), where the image's size turns the box into pixels.
 */

export interface YoloPredictionRows {
  count: number;
  /** Per row: the txt file (relative to the folder) and its stem. */
  files: string[];
  stems: string[];
  /** 1-based line numbers, for errors. */
  lines: number[];
  classes: number[];
  cx: number[];
  cy: number[];
  w: number[];
  h: number[];
  scores: number[];
}

export interface YoloResultsStep {
  bytesRead: number;
  rows: YoloPredictionRows;
}

const FILES_AT_ONCE = 16;
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** A line's fields: six for a box with its confidence. */
const BOX_FIELDS = 6;

function newRows(): YoloPredictionRows {
  return { count: 0, files: [], stems: [], lines: [], classes: [], cx: [], cy: [], w: [], h: [], scores: [] };
}

/**
 * The label files of a predictions folder: its own `*.txt`, or when it has none, those of its
 * `labels/` (the folder Ultralytics' predict writes them to, beside the annotated images).
 */
export async function listPredictionFiles(folder: InputLocation): Promise<string[]> {
  const top: string[] = [];
  const labels: string[] = [];
  for await (const name of folder.store.list(folder.key)) {
    if (!name.toLowerCase().endsWith('.txt') || name.split('/').some((s) => s.startsWith('.'))) continue;
    if (!name.includes('/')) top.push(name);
    else if (/^labels\/[^/]+$/.test(name)) labels.push(name);
  }
  const files = (top.length > 0 ? top : labels).sort();
  if (files.length === 0) {
    throw new DataVisorError('BAD_USER_INPUT', `results_path ${folder.url} holds no .txt file (nor does its labels/ folder): YOLO predictions are one "class cx cy w h conf" file per image, as yolo predict save_txt=True save_conf=True writes them`);
  }
  return files;
}

export async function* readYoloPredictions(folder: InputLocation, files: readonly string[]): AsyncGenerator<YoloResultsStep, number> {
  const key = (name: string) => (folder.store.kind === 'local' ? path.join(folder.key, name) : folder.key === '' ? name : `${folder.key}/${name}`);
  let bytesRead = 0;
  let count = 0;
  for (let i = 0; i < files.length; i += FILES_AT_ONCE) {
    const names = files.slice(i, i + FILES_AT_ONCE);
    const bodies = await Promise.all(names.map((n) => folder.store.readAll(key(n), { maxBytes: MAX_FILE_BYTES })));
    const rows = newRows();
    names.forEach((name, j) => {
      bytesRead += bodies[j]!.byteLength;
      parseFile(name, bodies[j]!.toString('utf8'), rows);
    });
    count += rows.count;
    yield { bytesRead, rows };
  }
  return count;
}

function parseFile(file: string, text: string, rows: YoloPredictionRows): void {
  const stem = path.posix.basename(file).replace(/\.[^.]*$/, '');
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const fields = line.trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === '') return;
    const where = `${file}:${i + 1}`;
    if (fields.length === BOX_FIELDS - 1) {
      throw invalid(`${where} has no confidence ("${line.trim()}"): predictions need a score; write them with yolo predict save_conf=True`);
    }
    if (fields.length !== BOX_FIELDS) {
      throw invalid(`${where} has ${fields.length} fields: a prediction is "class cx cy w h conf" (segmentation and pose predictions are not read)`);
    }
    const v = fields.map(Number);
    if (!v.every(Number.isFinite)) throw invalid(`${where}: "${line.trim()}" holds a field that is not a number`);
    if (!Number.isInteger(v[0]) || v[0]! < 0) throw invalid(`${where}: class ${fields[0]} is not a class index (a whole number from 0)`);
    rows.files.push(file);
    rows.stems.push(stem);
    rows.lines.push(i + 1);
    rows.classes.push(v[0]!);
    rows.cx.push(v[1]!);
    rows.cy.push(v[2]!);
    rows.w.push(v[3]!);
    rows.h.push(v[4]!);
    rows.scores.push(v[5]!);
    rows.count++;
  });
}

function invalid(message: string): DataVisorError {
  return new DataVisorError('INVALID_RESULTS', `Invalid YOLO predictions: ${message}`);
}
