import http from 'node:http';

export type UpstreamState = 'ready' | 'draining' | 'down';

export interface UpstreamOptions {
  pool: string;
  index: number;
  host: string;
  port: number;
  concurrency: number;
  idleSocketTimeoutMs: number;
}

/** One worker process as the proxy sees it: address, slots in use, state, keep-alive agent. */
export class Upstream {
  readonly name: string;
  readonly pool: string;
  readonly index: number;
  readonly host: string;
  readonly port: number;
  readonly concurrency: number;
  /** bounded to the worker's concurrency, so the proxy never opens more sockets than it has slots */
  readonly agent: http.Agent;
  readonly target: URL;
  state: UpstreamState = 'ready';
  inflight = 0;
  served = 0;
  failures = 0;
  lastError: string | undefined;

  constructor(options: UpstreamOptions) {
    this.pool = options.pool;
    this.index = options.index;
    this.name = `${options.pool}-${options.index}`;
    this.host = options.host;
    this.port = options.port;
    this.concurrency = options.concurrency;
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: options.concurrency,
      maxFreeSockets: options.concurrency,
      timeout: options.idleSocketTimeoutMs,
      scheduling: 'lifo',
    });
    this.target = new URL(`http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`);
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get hasFreeSlot(): boolean {
    return this.state === 'ready' && this.inflight < this.concurrency;
  }

  snapshot() {
    return {
      name: this.name,
      pool: this.pool,
      index: this.index,
      address: this.address,
      state: this.state,
      inflight: this.inflight,
      served: this.served,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
