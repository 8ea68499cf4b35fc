import { loadSettings } from '../config.js';
import { openDataVisor, type DataVisor } from '../services/app.js';
import { createLogger } from '../services/logger.js';

/** Opens the services for one command and closes them after, whatever happens. */
export async function withDataVisor<T>(work: (dv: DataVisor) => Promise<T>): Promise<T> {
  // Logs would tear the progress bar, and outcomes are printed anyway: only unexpected errors are logged.
  const dv = await openDataVisor(loadSettings(), createLogger(process.env.DATAVISOR_LOG_LEVEL || 'error'));
  try {
    return await work(dv);
  } finally {
    await dv.close();
  }
}
