import pino, { type Logger } from 'pino';
import { stdoutSink } from './stdout-sink.ts';

export type { Logger };

/** The levels LOG_LEVEL may name: pino's own, and `silent`. */
export const LOG_LEVELS = [...Object.keys(pino.levels.values), 'silent'];

/**
 * One JSON line per event on stdout (lib/stdout-sink.ts: dropped once the reader is gone, so no
 * write and no exit flush can wedge the process); level from LOG_LEVEL (default info). A
 * LOG_LEVEL pino does not know stops start-up like any other bad setting (a fatal line naming it,
 * exit 78), instead of pino's stack trace.
 */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  const requested = process.env.LOG_LEVEL || 'info';
  const options = { base: { component, pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!LOG_LEVELS.includes(requested)) {
    // The sink flushes at exit, so the line is not lost to the exit that follows.
    pino(options, stdoutSink()).fatal(
      { variable: 'LOG_LEVEL', value: requested },
      `LOG_LEVEL = ${JSON.stringify(requested)}: expected one of ${LOG_LEVELS.join(', ')}`,
    );
    process.exit(78); // EX_CONFIG, as for a bad config file
  }
  return pino({ ...options, level: requested }, stdoutSink());
}
