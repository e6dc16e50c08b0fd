import { armExitDeadline } from './exit-deadline.ts';
import type { Logger } from './log.ts';

/** Exit code of a stop that was cut short (second signal) or whose graceful stop failed. */
export const EXIT_STOP_FORCED = 1;

export interface StopHandling {
  log: Logger;
  /** from the first stop request to the watchdog's SIGKILL (lib/stop-deadlines.ts) */
  deadlineMs: number;
  /** the graceful stop; the process exits 0 when it resolves, EXIT_STOP_FORCED when it rejects */
  stop(reason: string): Promise<void>;
}

/**
 * Turns every way a stop can be asked for into one bounded stop: SIGTERM, SIGINT, PM2's
 * "shutdown" message, and the IPC channel to PM2 closing ('disconnect': PM2 was killed, and no
 * process of the stack may outlive it). The first request arms the exit deadline, then runs the
 * graceful stop; a second SIGTERM or SIGINT exits at once ('exit' hooks still run: git/hg groups
 * are SIGKILLed, the log is flushed within its bound).
 */
export function handleStopRequests(options: StopHandling): void {
  const { log } = options;
  let stopping = false;
  const begin = (reason: string) => {
    if (stopping) return;
    stopping = true;
    armExitDeadline(options.deadlineMs);
    log.info({ reason, deadlineMs: options.deadlineMs }, 'stopping');
    options.stop(reason).then(
      () => process.exit(0),
      (error: Error) => {
        log.error({ err: error }, 'stop failed');
        process.exit(EXIT_STOP_FORCED);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) return begin(signal);
    log.warn({ signal }, 'second stop signal: exiting now');
    process.exit(EXIT_STOP_FORCED);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('message', (message) => {
    if (message === 'shutdown') begin('pm2 shutdown message');
  });
  process.on('disconnect', () => begin('IPC channel to PM2 closed (PM2 is gone)'));
}
