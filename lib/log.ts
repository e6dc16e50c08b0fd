import pino, { type Logger } from 'pino';

export type { Logger };

/** One JSON line per event; level from LOG_LEVEL (default info). */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level: process.env.LOG_LEVEL ?? 'info',
    base: { component, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
