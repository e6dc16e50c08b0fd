import type { Socket } from 'node:net';
import type { ProxyConfig, RequestClass } from '../lib/config.ts';

type ClientsConfig = ProxyConfig['clients'];

/** One client connection as the tracker sees it: server.ts looks it up once per request. */
export interface TrackedConnection {
  socket: Socket;
  /** the client's address: the peer's, or what its PROXY protocol header gave */
  ip: string;
  /** that address is one of proxy.trustedProxies, so its X-Forwarded-* headers are believed */
  trustedPeer: boolean;
  /** the class of the connection's latest request; a new connection counts as "page" */
  requestClass: RequestClass;
  active: number;
  requests: number;
  idleSince: number;
  /** exempt from the per-IP limit (a trusted load balancer's own address) */
  exempt: boolean;
  upgraded: boolean;
}

export interface ConnectionCounts {
  total: number;
  overloaded: boolean;
  byClass: Record<RequestClass, { active: number; idle: number }>;
}

/**
 * The client side of keep-alive: which connections are idle, for how long, and of which class.
 * It enforces the per-class idle timeout and requests-per-socket limit, the per-IP connection
 * cap (closing that IP's oldest idle connection first), and tighter idle limits under overload.
 * Idle connections hold nothing but a socket: slots are taken per request, never per connection.
 */
export class ConnectionTracker {
  private readonly connections = new Map<Socket, TrackedConnection>();
  private readonly byIp = new Map<string, Set<TrackedConnection>>();
  private shuttingDown = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly config: ClientsConfig) {}

  get size(): number {
    return this.connections.size;
  }

  get overloaded(): boolean {
    return this.connections.size >= this.config.overload.connections;
  }

  /** Registers a new connection; false when the client is over its limit and nothing idle can give way. */
  admit(socket: Socket, ip: string, exempt: boolean, trustedPeer: boolean): boolean {
    const limit = this.config.maxConnectionsPerIp;
    const siblings = this.byIp.get(ip);
    if (!exempt && limit > 0 && siblings && siblings.size >= limit) {
      const oldestIdle = [...siblings]
        .filter((connection) => connection.active === 0 && !connection.upgraded)
        .sort((a, b) => a.idleSince - b.idleSince)[0];
      if (!oldestIdle) return false;
      this.close(oldestIdle);
    }
    const connection: TrackedConnection = {
      socket,
      ip,
      trustedPeer,
      requestClass: 'page',
      active: 0,
      requests: 0,
      idleSince: Date.now(),
      exempt,
      upgraded: false,
    };
    this.connections.set(socket, connection);
    let group = this.byIp.get(ip);
    if (!group) {
      group = new Set();
      this.byIp.set(ip, group);
    }
    group.add(connection);
    socket.once('close', () => this.forget(connection));
    if (this.overloaded) this.closeExpiredIdle(Date.now());
    return true;
  }

  /** The connection a socket was admitted as; undefined for one that was never admitted or has closed. */
  get(socket: Socket): TrackedConnection | undefined {
    return this.connections.get(socket);
  }

  /** A request started on the connection. Returns true when the connection must close after it. */
  requestStarted(connection: TrackedConnection | undefined, requestClass: RequestClass): boolean {
    if (!connection) return true;
    connection.requestClass = requestClass;
    connection.active++;
    connection.requests++;
    const max = this.config[requestClass].maxRequestsPerSocket;
    return this.shuttingDown || (max > 0 && connection.requests >= max);
  }

  requestFinished(connection: TrackedConnection | undefined): void {
    if (!connection || connection.active === 0) return;
    connection.active--;
    if (connection.active === 0) {
      if (this.shuttingDown) this.close(connection);
      else connection.idleSince = Date.now();
    }
  }

  /** WebSocket and other upgrades: long-lived, never idle-timed by the HTTP policy. */
  upgraded(socket: Socket): void {
    const connection = this.connections.get(socket);
    if (!connection) return;
    connection.upgraded = true;
  }

  counts(): ConnectionCounts {
    const byClass = {} as ConnectionCounts['byClass'];
    for (const requestClass of ['static', 'browser', 'page', 'clone', 'bot'] as const) {
      byClass[requestClass] = { active: 0, idle: 0 };
    }
    for (const connection of this.connections.values()) {
      const bucket = byClass[connection.requestClass];
      if (connection.active > 0 || connection.upgraded) bucket.active++;
      else bucket.idle++;
    }
    return { total: this.connections.size, overloaded: this.overloaded, byClass };
  }

  /** Graceful shutdown: close what is idle now, and every other connection when its response ends. */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const connection of [...this.connections.values()]) {
      if (connection.active === 0 && !connection.upgraded) this.close(connection);
    }
  }

  destroyAll(): void {
    for (const connection of [...this.connections.values()]) connection.socket.destroy();
  }

  private idleTimeoutMs(connection: TrackedConnection): number {
    const normal = this.config[connection.requestClass].idleTimeoutMs;
    return this.overloaded ? Math.min(normal, this.config.overload.idleTimeoutMs) : normal;
  }

  /**
   * Idle timeouts are enforced by one sweep instead of a timer per request: a keep-alive
   * connection going idle after every response would otherwise arm and clear a timer each time.
   */
  startSweeping(intervalMs = 100): void {
    this.sweeper = setInterval(() => this.closeExpiredIdle(Date.now()), intervalMs);
    this.sweeper.unref();
  }

  stopSweeping(): void {
    clearInterval(this.sweeper);
  }

  /** Closes idle connections past their class's idle timeout (shorter under overload). */
  private closeExpiredIdle(now: number): void {
    for (const connection of this.connections.values()) {
      if (connection.active === 0 && !connection.upgraded && now - connection.idleSince >= this.idleTimeoutMs(connection)) {
        this.close(connection);
      }
    }
  }

  private close(connection: TrackedConnection): void {
    connection.socket.destroy();
    this.forget(connection);
  }

  private forget(connection: TrackedConnection): void {
    if (!this.connections.delete(connection.socket)) return;
    const group = this.byIp.get(connection.ip);
    group?.delete(connection);
    if (group?.size === 0) this.byIp.delete(connection.ip);
  }
}
