import { probeGet } from '../lib/http-probe.ts';
import type { Logger } from '../lib/log.ts';
import { foreignStack, OWN_STACK_ID } from '../lib/stack-id.ts';
import type { Pool } from './pool.ts';
import type { Upstream } from './upstream.ts';

export interface HealthCheckOptions {
  path: string;
  intervalMs: number;
  timeoutMs: number;
}

/**
 * Who a supervised worker's health answer must say it is: a process of this launch of the stack
 * (a worker on this proxy's host), or, for a worker on another host of the site (a stack this
 * proxy cannot know), that host's worker of that pool and index.
 */
export type WorkerIdentity = { stack: string } | { siteHost: string; pool: string; index: number };

/** Why a health answer is not from the expected worker, or undefined when it is. */
function notTheWorker(expected: WorkerIdentity, report: { stack?: unknown; pid?: unknown; host?: unknown; pool?: unknown; index?: unknown }): string | undefined {
  if ('stack' in expected) return foreignStack(expected.stack, report);
  if (report.host === expected.siteHost && report.pool === expected.pool && report.index === expected.index) return undefined;
  const theirs = [report.pool, report.host, report.index].map((part) => String(part).slice(0, 40)).join('/');
  return `not the expected worker: pid ${String(report.pid).slice(0, 20)} reports ${theirs}, expected ${expected.pool}/${expected.siteHost}/${expected.index}`;
}

export interface ProbeResult {
  alive: boolean;
  /** why it is not alive */
  reason?: string;
  /** it answered, but it is not a process of this stack */
  foreign?: boolean;
}

/**
 * Alive when the worker answers HTTP with a status below 500 within the timeout. With `expected`
 * (supervised pools) the answer must also be JSON naming that identity: a process that is not the
 * one a supervisor started (a leftover of an earlier launch holding the port) is not alive,
 * whatever it answers.
 */
export async function probe(
  upstream: Upstream,
  options: Pick<HealthCheckOptions, 'path' | 'timeoutMs'>,
  expected?: WorkerIdentity,
): Promise<ProbeResult> {
  const answer = await probeGet({ host: upstream.host, port: upstream.port, ...options }, { readBody: expected !== undefined });
  if (answer === undefined || answer.status <= 0) return { alive: false, reason: 'no answer in time' };
  if (answer.status >= 500) return { alive: false, reason: `status ${answer.status}` };
  if (expected === undefined) return { alive: true };
  let report: { stack?: unknown; pid?: unknown };
  try {
    report = JSON.parse(answer.body) ?? {};
  } catch {
    report = {};
  }
  const foreign = notTheWorker(expected, report);
  return foreign === undefined ? { alive: true } : { alive: false, reason: foreign, foreign: true };
}

/**
 * Polls every worker: a dead worker (ejected at once by the forwarder on a refused connect) is
 * re-admitted when it answers again; a worker that stops answering is taken out. Draining
 * workers are left alone: their state belongs to whoever started the drain.
 *
 * Under PM2, a supervised worker must also prove it belongs to this launch of the stack
 * (lib/stack-id.ts), and a worker on another host of the site that it is that host's worker; each
 * starts out of rotation until its first check does. Static `targets` pools can be any HTTP app
 * and are not asked.
 */
export class HealthChecker {
  private running = false;

  /** `pools`: an array, or the proxy's live map of pools (a reload adds and removes pools in it) */
  constructor(
    private readonly pools: { values(): Iterable<Pool> },
    private options: HealthCheckOptions,
    private readonly log: Logger,
    private readonly expectedStack: string | undefined = OWN_STACK_ID,
    /** the site host this proxy is on (a site of several hosts) */
    private readonly selfHost?: string,
  ) {
    for (const pool of pools.values()) this.adopt(pool, pool.upstreams);
  }

  /** Workers new to the proxy start as the first ones did: a supervised one out of rotation until it proves its stack. */
  adopt(pool: Pool, upstreams: readonly Upstream[]): void {
    for (const upstream of upstreams) if (this.identityOf(pool, upstream)) pool.setState(upstream, 'down');
  }

  /** A reload's new path, interval and timeout (the next round uses them; the scheduler takes the interval). */
  setOptions(options: HealthCheckOptions): void {
    this.options = options;
  }

  /** how often the proxy's scheduler runs checkAll */
  get intervalMs(): number {
    return this.options.intervalMs;
  }

  async checkAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all([...this.pools.values()].flatMap((pool) => pool.upstreams.map((upstream) => this.check(pool, upstream))));
    } finally {
      this.running = false;
    }
  }

  private identityOf(pool: Pool, upstream: Upstream): WorkerIdentity | undefined {
    if (pool.config.targets) return undefined;
    if (upstream.siteHost !== undefined && upstream.siteHost !== this.selfHost) return { siteHost: upstream.siteHost, pool: pool.name, index: upstream.index };
    return this.expectedStack === undefined ? undefined : { stack: this.expectedStack };
  }

  private async check(pool: Pool, upstream: Upstream): Promise<void> {
    const result = await probe(upstream, this.options, this.identityOf(pool, upstream));
    if (upstream.state === 'draining') return;
    if (result.alive && upstream.state === 'down') {
      this.log.info({ worker: upstream.name }, 'worker answers health checks again: re-admitted');
      pool.setState(upstream, 'ready');
    } else if (!result.alive && upstream.state === 'ready') {
      this.log.warn({ worker: upstream.name, reason: result.reason }, 'worker failed its health check: ejected');
      pool.setState(upstream, 'down');
    }
    if (result.foreign && upstream.lastError !== result.reason) {
      this.log.warn({ worker: upstream.name, address: upstream.address, reason: result.reason }, 'a foreign process holds a worker port: not routed to');
      upstream.noteProblem(result.reason ?? 'a foreign process holds its port');
    }
  }
}
