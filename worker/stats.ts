export class WorkerStats {
  /** app requests accepted and not yet finished (including those waiting for the app lock) */
  inflight = 0;
  /** app requests finished; health checks do not count */
  served = 0;
  readonly startedAt = Date.now();
}
