import http from 'node:http';
import type { Socket } from 'node:net';

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
  private readonly idleSocketTimeoutMs: number;
  /** when each pooled socket last went idle (a Map, not a property: sockets keep one V8 shape) */
  private readonly idleSince = new Map<Socket, number>();
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
      scheduling: 'lifo',
    });
    // Idle keep-alive sockets are closed by closeIdleSockets, not by the agent's `timeout` option:
    // that arms a timer on every socket and refreshes it on every read and write of every request.
    this.idleSocketTimeoutMs = options.idleSocketTimeoutMs;
    this.agent.on('free', (socket: Socket) => {
      if (!this.idleSince.has(socket)) socket.once('close', () => this.idleSince.delete(socket));
      this.idleSince.set(socket, Date.now());
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

  /** Closes keep-alive sockets idle for the timeout or longer (call a few times per timeout). */
  closeIdleSockets(now = Date.now()): void {
    for (const sockets of Object.values(this.agent.freeSockets)) {
      for (const socket of [...(sockets ?? [])]) {
        if (now - (this.idleSince.get(socket) ?? now) >= this.idleSocketTimeoutMs) socket.destroy();
      }
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
