import { Counter, Gauge, Registry } from 'prom-client';
import type { Fleet } from './fleet.ts';
import { RECYCLE_REASONS, type RecycleReason } from './recycle-policy.ts';

/** The supervisor's own Prometheus series; /metrics appends them to the proxy's. */
export class SupervisorMetrics {
  readonly registry = new Registry();
  private readonly recycles: Counter<'pool' | 'reason'>;

  constructor(fleet: Fleet) {
    this.recycles = new Counter({
      name: 'switchyard_worker_recycles_total',
      help: 'Workers recycled (drained and restarted), by pool and reason',
      labelNames: ['pool', 'reason'],
      registers: [this.registry],
    });
    // Every series exists from the start (or from a reload that adds its pool), so rate() and alerts see 0 rather than nothing.
    const zeroes = () => {
      for (const pool of fleet.pools.keys()) for (const reason of RECYCLE_REASONS) this.recycles.inc({ pool, reason }, 0);
    };
    zeroes();
    fleet.on('membership', zeroes);
    new Gauge({
      name: 'switchyard_worker_rss_bytes',
      help: 'Resident memory of each worker, from its last health poll',
      labelNames: ['worker'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const worker of fleet.all()) if (worker.health) this.set({ worker: worker.name }, worker.health.rssBytes);
      },
    });
    new Gauge({
      name: 'switchyard_worker_up',
      help: '1 when the supervisor counts the worker as ready, else 0',
      labelNames: ['worker', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const worker of fleet.all()) this.set({ worker: worker.name, state: worker.state }, worker.state === 'ready' ? 1 : 0);
      },
    });
  }

  recycled(pool: string, reason: RecycleReason): void {
    this.recycles.inc({ pool, reason });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
