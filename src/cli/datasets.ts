import type { Settings } from '../config.js';
import { openDataVisor } from '../services/app.js';
import { datasetJson } from '../services/datasets/json-views.js';
import { DataVisorError } from '../services/errors.js';
import { createLogger } from '../services/logger.js';
import { liveServer, type ServerFile } from './server-file.js';

type DatasetJson = ReturnType<typeof datasetJson>;

/** A server busy with an ingest still answers GET /datasets at once; this only bounds a hung one. */
const SERVER_TIMEOUT_MS = 30_000;

/**
 * `{"datasets":[…]}` as GET /datasets answers it. Beside a running `datavisor serve` the database
 * file is locked (server-file.ts), so the list comes from that server; otherwise from the file.
 */
export async function listDatasets(settings: Settings): Promise<{ datasets: DatasetJson[] }> {
  const server = liveServer(settings.dbPath);
  if (server) {
    const answer = await askServer(server, settings.apiToken);
    if (answer) return answer;
  }
  const dv = await openDataVisor(settings, createLogger(process.env.DATAVISOR_LOG_LEVEL || 'error'));
  try {
    return { datasets: (await dv.datasets.list()).map(datasetJson) };
  } finally {
    await dv.close();
  }
}

/** null when the server cannot be reached (it is exiting): the file is then tried, and says why it is not free. */
async function askServer(server: ServerFile, token: string | undefined): Promise<{ datasets: DatasetJson[] } | null> {
  let res: Response;
  try {
    res = await fetch(`${server.url}/datasets`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(SERVER_TIMEOUT_MS),
    });
  } catch {
    return null;
  }
  const body = (await res.json().catch(() => null)) as { datasets?: DatasetJson[]; error?: { message?: string } } | null;
  if (res.ok && Array.isArray(body?.datasets)) return { datasets: body.datasets };
  const why = body?.error?.message ?? `an unexpected answer (${res.headers.get('content-type') ?? 'no content type'})`;
  const hint = res.status === 401 ? ': set DATAVISOR_API_TOKEN to its token' : '';
  throw new DataVisorError('UNAVAILABLE', `${server.db} is held by the DataVisor server at ${server.url} (pid ${server.pid}), which answered GET /datasets with ${res.status}: ${why}${hint}`);
}

/** The table `datavisor datasets` prints on a terminal. */
export function datasetTable(datasets: readonly DatasetJson[]): string {
  if (datasets.length === 0) return 'no datasets\n';
  const rows = datasets.map((d) => [d.id, d.name, String(d.image_count), String(d.annotation_count), String(d.category_count), d.created_at]);
  const head = ['ID', 'NAME', 'IMAGES', 'ANNOTATIONS', 'CATEGORIES', 'CREATED'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => `${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`).join('');
}
