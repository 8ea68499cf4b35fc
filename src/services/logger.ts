import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Structured JSON logs on stderr (stdout belongs to the CLI's output). DATAVISOR_LOG_LEVEL
 * picks the level (default `info`; `silent` turns logging off).
 */
/** JSON lines to stderr, or to `destination` (tests read them). */
export function createLogger(level = process.env.DATAVISOR_LOG_LEVEL || 'info', destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'datavisor' } }, destination ?? pino.destination({ fd: 2, sync: false }));
}
