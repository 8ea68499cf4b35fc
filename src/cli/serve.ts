import type { Settings } from '../config.js';

// Placeholder until the HTTP server lands (issue 4).
export async function serve(_settings: Settings): Promise<void> {
  throw new Error('serve is not built yet');
}
