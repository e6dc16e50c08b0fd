import { probeGet } from '../lib/http-probe.ts';
import type { Logger } from '../lib/log.ts';
import type { Pool } from './pool.ts';
import type { Upstream } from './upstream.ts';

export interface HealthCheckOptions {
  path: string;
  intervalMs: number;
  timeoutMs: number;
}

/** Resolves true when the worker answers HTTP with a status below 500 within the timeout. */
export async function probe(upstream: Upstream, options: Pick<HealthCheckOptions, 'path' | 'timeoutMs'>): Promise<boolean> {
  const answer = await probeGet({ host: upstream.host, port: upstream.port, ...options });
  return answer !== undefined && answer.status > 0 && answer.status < 500;
}

/**
 * Polls every worker: a dead worker (ejected at once by the forwarder on a refused connect) is
 * re-admitted when it answers again; a worker that stops answering is taken out. Draining
 * workers are left alone: their state belongs to whoever started the drain.
 */
export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly pools: Pool[],
    private readonly options: HealthCheckOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async checkAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all(this.pools.flatMap((pool) => pool.upstreams.map((upstream) => this.check(pool, upstream))));
    } finally {
      this.running = false;
    }
  }

  private async check(pool: Pool, upstream: Upstream): Promise<void> {
    const alive = await probe(upstream, this.options);
    if (upstream.state === 'draining') return;
    if (alive && upstream.state === 'down') {
      this.log.info({ worker: upstream.name }, 'worker answers health checks again: re-admitted');
      pool.setState(upstream, 'ready');
    } else if (!alive && upstream.state === 'ready') {
      this.log.warn({ worker: upstream.name }, 'worker failed its health check: ejected');
      pool.setState(upstream, 'down');
    }
  }
}
