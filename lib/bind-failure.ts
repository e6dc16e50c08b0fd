import { sendFatalReport } from './fatal-report.ts';
import type { Logger } from './log.ts';
import { describeHolders, findPortHolders } from './port-holder.ts';

/** Exit code of a process that could not bind its port (98 is EADDRINUSE's errno on Linux). */
export const EXIT_PORT_IN_USE = 98;

export interface ListenTarget {
  host: string;
  port: number;
  /** the worker's pool and instance, when a worker is the one that failed */
  pool?: string;
  index?: number;
}

export function isAddressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/**
 * A port that is already taken: names what holds it (pid and command line) in one fatal line,
 * tells the supervisor over PM2's bus, and exits EXIT_PORT_IN_USE. PM2 restarts the process with
 * its backoff, so it binds once the holder is gone.
 */
export async function exitPortInUse(log: Logger, target: ListenTarget): Promise<never> {
  const holders = findPortHolders(target.port);
  const message = `cannot listen on ${target.host}:${target.port}: the port is held by ${describeHolders(holders)}`;
  const detail = { host: target.host, port: target.port, holders, exitCode: EXIT_PORT_IN_USE };
  log.fatal(detail, message);
  await sendFatalReport({ pool: target.pool, index: target.index, message, detail });
  process.exit(EXIT_PORT_IN_USE);
}
