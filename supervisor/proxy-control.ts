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

/** A proxy's answer to a reload: what it applied, and what needs its restart. */
export interface ProxyReloadAnswer {
  changes: string[];
  notApplied: string[];
}

/** A reload rebuilds the proxy's pools and rules: more than a state read, still well under a second. */
const RELOAD_TIMEOUT_MS = 10_000;

/** A client of one proxy's loopback control API (Bearer admin token). */
export class ProxyControlClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 2000,
  ) {}

  private send(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<Response> {
    return fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  }

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const response = await this.send(method, path, body);
    if (!response.ok) throw new Error(`${method} ${this.baseUrl}${path}: HTTP ${response.status}`);
    return response;
  }

  /**
   * Has the proxy re-read its config file (POST /reload). Rejects with the proxy's own words when
   * it refuses (422: every problem of its file) or cannot be reached.
   */
  async reload(): Promise<ProxyReloadAnswer> {
    const response = await this.send('POST', '/reload', undefined, RELOAD_TIMEOUT_MS);
    const text = await response.text();
    let body: Partial<ProxyReloadAnswer> & { error?: string; problems?: string[] } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the status says enough
    }
    if (response.ok) return { changes: body.changes ?? [], notApplied: body.notApplied ?? [] };
    const problems = (body.problems ?? []).filter((problem) => !body.error?.includes(problem));
    throw new Error([`POST ${this.baseUrl}/reload: HTTP ${response.status}${body.error ? `: ${body.error}` : ''}`, ...problems].join('\n  '));
  }

  async state(): Promise<ProxyStateView> {
    return (await this.call('GET', '/state')).json() as Promise<ProxyStateView>;
  }

  /**
   * False when the proxy has no such worker: its config does not name it (yet: a reload adds a
   * pool's workers to the proxies once they are up; or any more).
   */
  async setWorkerState(worker: string, state: ProxyWorkerState): Promise<boolean> {
    const path = `/workers/${encodeURIComponent(worker)}/state`;
    const response = await this.send('PUT', path, { state });
    await response.arrayBuffer();
    if (response.status === 404) return false;
    if (!response.ok) throw new Error(`PUT ${this.baseUrl}${path}: HTTP ${response.status}`);
    return true;
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
