import path from 'node:path';
import type { Settings } from '../config.js';
import { startServer, type RunningServer } from '../server.js';
import { openDataVisor, type DataVisor } from '../services/app.js';
import { generateDemoDataset } from '../demo/index.js';
import { imagePath } from '../services/datasets/json-views.js';
import { createLogger } from '../services/logger.js';
import { removeServerFile, writeServerFile } from './server-file.js';

/** Where `serve` draws the demo dataset (docs/demo.md), relative to the working directory. */
const DEMO_DIR = 'data/demo';
/** After the first signal the process is gone within this, whatever it was doing (docs/rest.md, "Start and shutdown"). */
const SHUTDOWN_DEADLINE_MS = 5_000;
/** Open requests get this long to finish (an ingest stream sending its last event) before their connections are cut. */
const REQUEST_GRACE_MS = 2_000;
/** How long shutdown waits for cancelled ingests to finish rolling back before closing DuckDB. */
const ROLLBACK_WAIT_MS = 1_500;
/** A second signal within this time of the first is the same signal delivered twice (see onSignal). */
const DUPLICATE_SIGNAL_MS = 2_000;

const say = (line: string) => process.stdout.write(`${line}\n`);

/**
 * `datavisor serve` / `npm start`: opens the services, serves HTTP, adds the demo dataset to an
 * empty database (in the background: /health answers meanwhile), and shuts down cleanly on
 * SIGINT/SIGTERM; a second signal (2 s or more after the first) kills it at once.
 * Logs go to stderr as JSON; the URLs to try go to stdout.
 */
export async function serve(settings: Settings): Promise<void> {
  const log = createLogger();
  const demoDir = path.resolve(DEMO_DIR);
  // The demo folder is written by us, so ingestion may read it whatever DATAVISOR_DATA_ROOTS says.
  const effective = settings.demo ? { ...settings, dataRoots: [...settings.dataRoots, demoDir] } : settings;
  const dv = await openDataVisor(effective, log);
  let running: RunningServer;
  try {
    running = await startServer(dv, { closeGraceMs: REQUEST_GRACE_MS });
  } catch (e) {
    await dv.close();
    throw e;
  }
  let stopping = false;
  let firstSignalAt = 0;
  const shutdown = async (signal: NodeJS.Signals) => {
    const started = performance.now();
    log.info({ signal, active_ingests: dv.ingestion.active }, 'shutting down');
    let code: number | null = null;
    // Exit by letting the event loop drain rather than process.exit(): pending log writes finish
    // (or fail, if the reader of stderr is gone) first. process.exit() with a write in flight to a
    // broken pipe makes pino's synchronous exit flush retry it forever. Whatever still holds the
    // loop open at the deadline (a sharp decode of a request already cut, a hung plugin hook) is
    // cut then; DuckDB's statements are interrupted first, since exiting waits for them.
    setTimeout(() => {
      if (code === null) {
        log.error({ deadline_ms: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time: exiting without it');
        dv.db.stop();
      }
      process.exit(code ?? 1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    // No longer answering: CLI commands go back to the file (and find it locked until DuckDB is closed).
    removeServerFile(settings.dbPath);
    try {
      const closed = running.close();
      // Running ingests end with an INGEST_CANCELLED error event and roll back (no half dataset);
      // statements running now stop at once instead of at their end (an ingest's final SQL, a heavy
      // query), new ones and queued thumbnails are refused: their requests answer 503 UNAVAILABLE.
      dv.stopWork();
      await closed;
      // The demo's drawing is not waited for: it writes a temporary folder, renamed when whole.
      await waitForIngestsToEnd(dv);
      await dv.close();
      log.info({ ms: Math.round(performance.now() - started) }, 'stopped');
      code = 0;
    } catch (err) {
      log.error({ err }, 'unclean shutdown');
      code = 1;
    }
    process.exitCode = code;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true;
      firstSignalAt = Date.now();
      void shutdown(signal);
      return;
    }
    // Under `npm start` one Ctrl-C arrives twice: the terminal signals the whole process group and
    // npm forwards its own copy. Only a signal sent later is the user insisting.
    if (Date.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
    // Insisting: die by the signal at once, as if we had no handler, skipping all clean-up.
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // CLI commands run beside the server find it through this file (server-file.ts), removed at exit.
  writeServerFile(settings.dbPath, running.url);
  process.on('exit', () => removeServerFile(settings.dbPath));
  // Printed only once the handlers are in place: whoever reads the URL may signal right away.
  say(`DataVisor listening on ${running.url}`);
  say(`  GraphQL   ${running.url}/graphql`);
  say(`  REST      ${running.url}/datasets   (OpenAPI: ${running.url}/openapi.json)`);

  if (settings.demo) {
    void addDemo(dv, demoDir, running.url, () => stopping).catch((err: unknown) => {
      // A shutdown closing the database under the demo is not worth a report.
      if (stopping) return;
      log.error({ err }, 'the demo dataset could not be added');
      say(`Demo dataset not added: ${(err as Error)?.message ?? String(err)}`);
    });
  }
}

/** Draws and ingests the demo when the database holds no dataset (docs/demo.md). */
async function addDemo(dv: DataVisor, demoDir: string, url: string, stopping: () => boolean): Promise<void> {
  if ((await dv.datasets.count()) > 0 || stopping()) return;
  say(`The database is empty: drawing a demo dataset in ${demoDir} (DATAVISOR_DEMO=0 turns this off)…`);
  const files = await generateDemoDataset(demoDir);
  if (stopping()) return;
  let last: { stage: string; message: string; code?: string; dataset_id?: string } | undefined;
  for await (const e of dv.ingestion.ingest({ annotationPath: files.annotationPath, imageDir: files.imageDir, datasetName: 'demo' })) last = e;
  if (last?.stage !== 'complete' || !last.dataset_id) {
    say(`Demo dataset not added (${last?.code ?? 'INTERNAL'}): ${last?.message ?? 'no result'}`);
    return;
  }
  const id = last.dataset_id;
  const first = (await dv.samples.page(id, {}, { kind: 'offset', offset: 0, limit: 1 })).samples[0];
  say(`${last.message}. Try:`);
  say(`  ${url}/datasets/${id}`);
  say(`  ${url}/samples?dataset_id=${id}&category=circle&limit=10`);
  if (first) say(`  ${url}${imagePath(id, first.id, 'medium', dv.access)}`);
  say(`  ${url}/graphql`);
}

/** Cancelled ingests roll back in their generator's `finally`; DuckDB must stay open until then. */
async function waitForIngestsToEnd(dv: DataVisor): Promise<void> {
  const deadline = Date.now() + ROLLBACK_WAIT_MS;
  while (dv.ingestion.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}
