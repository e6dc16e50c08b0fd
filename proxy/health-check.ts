import http from 'node:http';
import type { Logger } from '../lib/log.ts';
import type { Pool } from './pool.ts';
import type { Upstream } from './upstream.ts';

export interface HealthCheckOptions {
  path: string;
  intervalMs: number;
  timeoutMs: number;
}

/** Resolves true when the worker answers HTTP with a status below 500 within the timeout. */
export function probe(upstream: Upstream, options: Pick<HealthCheckOptions, 'path' | 'timeoutMs'>): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(
      { host: upstream.host, port: upstream.port, path: options.path, agent: false, timeout: options.timeoutMs },
      (response) => {
        response.resume();
        resolve((response.statusCode ?? 500) < 500);
      },
    );
    request.on('timeout', () => request.destroy(new Error('health check timed out')));
    request.on('error', () => resolve(false));
  });
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
