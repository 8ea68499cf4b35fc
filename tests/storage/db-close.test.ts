import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { tempDir } from '../helpers/env.js';

/**
 * Database.close() under a running statement. DuckDB closed under a statement leaves its callback
 * pending forever, and process.exit() then waits for it: the process never ends. close() must
 * interrupt the statement, wait for it, and only then close. Run in a child process, since the
 * failure is a process that does not exit.
 */

const CONNECTION = fileURLToPath(new URL('../../dist/services/db/connection.js', import.meta.url));
/** The statement alone runs for a minute or more on this machine; the deadline is what the test is about. */
const DEADLINE_MS = 15_000;
const dir = tempDir('dv-close-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
const { Database } = await import(${JSON.stringify(CONNECTION)});
const db = await Database.open(${JSON.stringify(path.join(dir, 'db.duckdb'))});
const long = db.query('SELECT sum(i) AS s FROM range(20000000000) t(i)').then(
  () => 'finished',
  (e) => e.code + ' ' + e.message,
);
await new Promise((r) => setTimeout(r, 200));
await db.close();
console.log(await long);
process.exit(0);
`;

test('close() interrupts a running query, which fails with UNAVAILABLE, and the process exits', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(timer);
  expect({ code, signal, out: out.trim() }).toEqual({ code: 0, signal: null, out: 'UNAVAILABLE The query was interrupted: the server is shutting down' });
}, 30_000);
