/** What a worker reports at /_worker/health (the contract of ../shared/DESIGN.md). */
export interface WorkerHealthReport {
  pid: number;
  pool: string;
  index: number;
  /** the site host it runs on (a site of several hosts: `hosts` in the config) */
  host?: string;
  inflight: number;
  served: number;
  rssBytes: number;
  heapUsedBytes: number;
  uptimeSec: number;
  /** the launch of the stack it belongs to (lib/stack-id.ts); absent outside PM2 */
  stack?: string;
}
