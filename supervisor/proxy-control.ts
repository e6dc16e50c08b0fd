import type { ProxyWorkerState } from '../lib/fleet-channel.ts';
import type { LaneMinute } from './history/types.ts';

/** A worker as one proxy sees it (GET /state of the proxy control API). */
export interface ProxyWorkerView {
  name: string;
  pool: string;
  state: ProxyWorkerState;
  inflight: number;
  served: number;
  failures: number;
}

/**
 * One client's part of a pool right now: `client` is its fair-share key (an address, a /24 or /64
 * prefix for anonymous crawlers, `token:<hash>` for a CI bot token), as the network gave it.
 */
export interface ClientShareView {
  lane: string;
  client: string;
  /** slots it holds on the pool's workers */
  holding: number;
  /** places it has in the pool's queue */
  queued: number;
}

/** What the proxy holds in memory and temp files for clients slower than their workers. */
export interface SpoolUsageView {
  memoryBytes: number;
  diskBytes: number;
  clients: number;
}

export interface ProxyPoolView {
  name: string;
  queueDepth: number;
  queueFull?: number;
  queueTimeouts?: number;
  /** 429s to clients past their share of the queue (absent from proxies before fair share) */
  clientShareRefused?: number;
  /** the clients holding the most workers and queue places, biggest first (at most 5, all lanes) */
  topClients?: ClientShareView[];
  workers: ProxyWorkerView[];
}

export interface ProxyStateView {
  draining: boolean;
  inflight: number;
  pools: ProxyPoolView[];
  lanes: unknown[];
  connections: unknown;
  responseSpool?: SpoolUsageView;
}

/** A client of one proxy's loopback control API (Bearer admin token). */
export class ProxyControlClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 2000,
  ) {}

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!response.ok) throw new Error(`${method} ${this.baseUrl}${path}: HTTP ${response.status}`);
    return response;
  }

  async state(): Promise<ProxyStateView> {
    return (await this.call('GET', '/state')).json() as Promise<ProxyStateView>;
  }

  async setWorkerState(worker: string, state: ProxyWorkerState): Promise<void> {
    await (await this.call('PUT', `/workers/${encodeURIComponent(worker)}/state`, { state })).arrayBuffer();
  }

  async finishedMinutes(since: Date | undefined): Promise<LaneMinute[]> {
    const query = since ? `?since=${encodeURIComponent(since.toISOString())}` : '';
    const raw = (await (await this.call('GET', `/stats/minutes${query}`)).json()) as Array<LaneMinute & { minute: string }>;
    return raw.map((entry) => ({ ...entry, minute: new Date(entry.minute) }));
  }

  async metrics(): Promise<string> {
    return (await this.call('GET', '/metrics')).text();
  }
}

/** Every worker's view in one proxy state, by name. */
export function workersOf(state: ProxyStateView): Map<string, ProxyWorkerView> {
  return new Map(state.pools.flatMap((pool) => pool.workers.map((worker) => [worker.name, worker] as const)));
}
