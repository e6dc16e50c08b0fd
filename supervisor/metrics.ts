import { Counter, Gauge, Registry } from 'prom-client';
import type { Fleet } from './fleet.ts';
import { RECYCLE_REASONS, type RecycleReason } from './recycle-policy.ts';
import type { SiteView } from './site-view.ts';

/**
 * The supervisor's own Prometheus series; /metrics appends them to the proxies'. Every worker
 * series carries a `host` label: this host's workers as this supervisor sees them, and on a site
 * of several hosts the other hosts' as their supervisors last reported them, so one scrape of
 * any supervisor sees the whole site.
 */
export class SupervisorMetrics {
  readonly registry = new Registry();
  /** this supervisor's own recycle counts, for its host report */
  private readonly counts = new Map<string, { pool: string; reason: string; count: number }>();

  constructor(fleet: Fleet, host: string, site?: SiteView) {
    const counts = this.counts;
    // Counted in `counts` (what the host report carries) and rebuilt at each scrape with the other
    // hosts' counters, which are their supervisors' to keep.
    new Counter({
      name: 'switchyard_worker_recycles_total',
      help: 'Workers recycled (drained and restarted), by pool, reason and host',
      labelNames: ['pool', 'reason', 'host'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const entry of counts.values()) this.inc({ pool: entry.pool, reason: entry.reason, host }, entry.count);
        for (const entry of site?.remoteRecycles() ?? []) this.inc({ pool: entry.pool, reason: entry.reason, host: entry.host }, entry.count);
      },
    });
    // Every series exists from the start (or from a reload that adds its pool), so rate() and alerts see 0 rather than nothing.
    const zeroes = () => {
      for (const pool of fleet.pools.keys()) {
        for (const reason of RECYCLE_REASONS) if (!counts.has(`${pool}\n${reason}`)) counts.set(`${pool}\n${reason}`, { pool, reason, count: 0 });
      }
    };
    zeroes();
    fleet.on('membership', zeroes);
    new Gauge({
      name: 'switchyard_worker_rss_bytes',
      help: 'Resident memory of each worker, from its last health poll',
      labelNames: ['worker', 'host'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const worker of fleet.all()) if (worker.health) this.set({ worker: worker.name, host }, worker.health.rssBytes);
        for (const worker of site?.remoteWorkers() ?? []) if (worker.hostUp && worker.rssBytes !== undefined) this.set({ worker: worker.name, host: worker.host }, worker.rssBytes);
      },
    });
    new Gauge({
      name: 'switchyard_worker_up',
      help: '1 when the supervisor counts the worker as ready, else 0 (another host\'s worker: as its supervisor reported; down once that host is gone)',
      labelNames: ['worker', 'state', 'host'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const worker of fleet.all()) this.set({ worker: worker.name, state: worker.state, host }, worker.state === 'ready' ? 1 : 0);
        for (const worker of site?.remoteWorkers() ?? []) this.set({ worker: worker.name, state: worker.state, host: worker.host }, worker.state === 'ready' ? 1 : 0);
      },
    });
  }

  recycled(pool: string, reason: RecycleReason): void {
    const key = `${pool}\n${reason}`;
    const entry = this.counts.get(key) ?? { pool, reason, count: 0 };
    entry.count++;
    this.counts.set(key, entry);
  }

  /** This supervisor's recycle counts since it started (what its host report carries). */
  recycleCounts(): Array<{ pool: string; reason: string; count: number }> {
    return [...this.counts.values()].map((entry) => ({ ...entry }));
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
