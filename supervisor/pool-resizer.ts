import { workerApp } from '../lib/ecosystem.ts';
import type { PoolConfig, SwitchyardConfig } from '../lib/config.ts';
import type { DrainCoordinator } from './drain-coordinator.ts';
import type { EventLog } from './event-log.ts';
import type { Fleet, FleetWorker } from './fleet.ts';
import type { Pm2Client } from './pm2-client.ts';

export interface PoolResizerOptions {
  fleet: Fleet;
  coordinator: DrainCoordinator;
  events: EventLog;
  pm2: Pm2Client;
  /** learns the PM2 ids of the fleet's workers (`pm2 list`) */
  refreshPm2(): Promise<void>;
  /** SWITCHYARD_CONFIG of a pool's app the supervisor starts */
  configFile: string;
  /** how long new workers may take to pass their health checks */
  readyTimeoutMs: number;
  pollMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const appOf = (pool: string) => `worker-${pool}`;

/**
 * Starts and stops the workers of supervised pools when a reload changes their number. A pool's
 * instances are always 0..n-1 on portBase+index: workers are added at the end (PM2's `scale`,
 * whose `increment_var` gives the next port) and removed from the end, each drained first.
 */
export class PoolResizer {
  constructor(private readonly options: PoolResizerOptions) {}

  /**
   * Starts the pool's workers from `from` up to `config.instances` (a new pool: its PM2 app) and
   * resolves once they pass their health checks, with the names of those that did not in time.
   */
  async grow(pool: string, config: PoolConfig, from: number, stack: SwitchyardConfig): Promise<string[]> {
    const { fleet, pm2 } = this.options;
    const count = config.instances - from;
    const running = (await pm2.list()).filter((process) => process.name === appOf(pool)).length;
    if (running !== from) throw new Error(`PM2 runs ${running} processes of ${appOf(pool)} where the supervisor expected ${from}; not resized`);
    const existing = fleet.pools.get(pool);
    const added = existing ? fleet.addWorkers(existing, count) : fleet.addPool(pool, config).workers;
    if (from === 0) await pm2.start(workerApp(stack, pool, this.options.configFile));
    else await pm2.addInstances(appOf(pool), count);
    await this.options.refreshPm2();
    return this.waitReady(added);
  }

  /**
   * Retires the pool's workers from index `to` on (all of them for 0): each is marked draining at
   * once (the proxies stop sending before this returns), then drained, forgotten and stopped
   * through PM2. The promise resolves when they are gone; events tell each one's end.
   */
  shrink(pool: string, to: number): Promise<void> {
    const { fleet, coordinator } = this.options;
    const leaving = (fleet.pools.get(pool)?.workers ?? []).filter((worker) => worker.index >= to);
    const drains = leaving.map((worker) => coordinator.retire(worker.name).then((outcome) => ({ worker, ...outcome })));
    return Promise.all(drains)
      .then((drained) => this.stop(pool, to, drained))
      .catch((error: Error) => {
        this.options.events.record({ kind: 'error', pool, reason: `removing workers of ${pool} failed: ${error.message}` });
      });
  }

  private async stop(pool: string, to: number, drained: Array<{ worker: FleetWorker; drained: boolean; drainMs: number }>): Promise<void> {
    const { fleet, pm2, events } = this.options;
    await this.options.refreshPm2();
    // Forgotten before PM2 stops them, so that their exits are not taken for crashes.
    for (const { worker } of drained) fleet.removeWorker(worker);
    if (to === 0) await pm2.delete(appOf(pool));
    for (const { worker, drained: empty, drainMs } of drained) {
      if (to > 0 && worker.pmId !== undefined) await pm2.delete(worker.pmId); // no id: PM2 runs nothing for it
      events.record({ kind: 'stop', pool, worker: worker.name, reason: 'removed by a config reload', detail: { drained: empty, drainMs, pid: worker.pid } });
    }
  }

  private async waitReady(workers: FleetWorker[]): Promise<string[]> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    const notReady = () => workers.filter((worker) => worker.state !== 'ready').map((worker) => worker.name);
    while (notReady().length > 0 && Date.now() < deadline) await sleep(this.options.pollMs);
    return notReady();
  }
}
