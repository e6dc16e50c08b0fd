import type { SwitchyardConfig } from './config.ts';

/**
 * How long each process type may take to exit once asked to stop, after which its watchdog
 * (lib/exit-deadline.ts) SIGKILLs it. Each is its graceful stop plus EXIT_MARGIN_MS for closing
 * up; PM2's own kill_timeout (lib/ecosystem.ts) is PM2_KILL_AFTER_MS later still, so PM2's SIGKILL
 * is only the second line.
 */
export const EXIT_MARGIN_MS = 3000;
export const PM2_KILL_AFTER_MS = 2000;

export type StackProcess = 'proxy' | 'proxy-master' | 'supervisor' | 'worker';

export function exitDeadlineMs(process: StackProcess, config: SwitchyardConfig): number {
  switch (process) {
    case 'proxy':
      return config.proxy.shutdown.healthFailLeadMs + config.proxy.shutdown.graceMs + EXIT_MARGIN_MS;
    case 'proxy-master':
      // it waits for its proxy processes, each bounded as above
      return exitDeadlineMs('proxy', config) + EXIT_MARGIN_MS;
    case 'worker':
      // the worker aborts what is still in flight at shutdownTimeoutMs, then reaps git/hg (2 s at most)
      return config.worker.shutdownTimeoutMs + EXIT_MARGIN_MS;
    case 'supervisor':
      return 5000 + EXIT_MARGIN_MS; // its API, PM2 and Redis connections, and a last lane-minute fetch
  }
}
