import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout's rules (docs/architecture.md), read from the import statements of src/:
 * `rest | schema | cli → services → services/db`, no cycle, and the storage layer knows records,
 * never a format.
 */

const SRC = path.resolve(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** file (relative to src/) → the files of src/ it imports, types included. */
const graph = new Map<string, string[]>(
  sources(SRC).map((file) => {
    const text = fs.readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
      path.relative(SRC, path.resolve(path.dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
    );
    return [path.relative(SRC, file), targets];
  }),
);

const importers = (pred: (from: string, to: string) => boolean) =>
  [...graph].flatMap(([from, tos]) => tos.filter((to) => pred(from, to)).map((to) => `${from} → ${to}`));

describe('the layout', () => {
  it('reads every import it checks (the graph is not empty)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('services/app.ts')).toContain('services/db/connection.ts');
  });

  it('has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('services never import an adapter (rest, schema, cli, server)', () => {
    expect(importers((from, to) => from.startsWith('services/') && /^(rest|schema|cli)\/|^server\.ts$/.test(to))).toEqual([]);
  });

  it('adapters reach the database only through services', () => {
    expect(importers((from, to) => /^(rest|schema|cli)\/|^server\.ts$/.test(from) && to.startsWith('services/db/'))).toEqual([]);
  });

  it('rest and schema never import each other', () => {
    expect(importers((from, to) => (from.startsWith('rest/') && to.startsWith('schema/')) || (from.startsWith('schema/') && to.startsWith('rest/')))).toEqual([]);
  });

  it('services/db imports records, never a format or an ingest', () => {
    expect(importers((from, to) => from.startsWith('services/db/') && to.startsWith('services/ingest/'))).toEqual([]);
  });

  it('only services/db imports DuckDB', () => {
    const duck = [...graph.keys()].filter((f) => !f.startsWith('services/db/') && /@duckdb\//.test(fs.readFileSync(path.join(SRC, f), 'utf8')));
    expect(duck).toEqual([]);
  });

  it('the demo is entered through demo/index.ts, the only importer of demo/folder.ts', () => {
    expect(importers((from, to) => !from.startsWith('demo/') && to.startsWith('demo/') && to !== 'demo/index.ts')).toEqual([]);
    expect(importers((from, to) => to === 'demo/folder.ts' && from !== 'demo/index.ts')).toEqual([]);
  });

  it('ingest knows formats only through the registry', () => {
    expect(importers((from, to) => from.startsWith('services/ingest/') && !from.startsWith('services/ingest/formats/') && to.startsWith('services/ingest/formats/') && !/formats\/(registry|reader|probe)\.ts$/.test(to))).toEqual([]);
  });
});
