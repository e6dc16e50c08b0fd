import type { Socket } from 'node:net';
import { CLASSES, type ProxyConfig, type RequestClass } from '../lib/config.ts';

type ClientsConfig = ProxyConfig['clients'];

export interface TrackerLimits {
  /** a request's headers must be complete within this: bytes that make none for longer are not a request on its way */
  headersTimeoutMs: number;
}

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
  /** socket.bytesRead when it went idle: more since means a next request is on its way */
  bytesReadWhenIdle: number;
  /** when the sweep first saw bytes that no request has been made of yet (undefined: none) */
  unparsedSince: number | undefined;
  /** close once the requests owed an answer have had it (the parser gave up on what came after) */
  closeWhenAnswered: boolean;
  /** pipelined requests that arrived while one was in flight, handled one at a time in order */
  waiting: Array<() => void>;
  /** exempt from the per-IP limit (a trusted load balancer's own address) */
  exempt: boolean;
  upgraded: boolean;
}

export interface ConnectionCounts {
  total: number;
  /** connections on the idle list (at most total: more is a leak of closed connections) */
  idleListed: number;
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
  /** connections with nothing in flight, longest idle first (a Set keeps insertion order) */
  private readonly idleOrder = new Set<TrackedConnection>();
  private shuttingDown = false;
  /** the process is being replaced: every connection closes after its next response */
  private retiring = false;

  constructor(
    private config: ClientsConfig,
    private limits: TrackerLimits,
  ) {}

  /**
   * A reload's client policy: caps apply to the next connection admitted, and each open
   * connection takes the new idle timeout and request limit from its next request or idle
   * period on (nothing open is closed for it).
   */
  reconfigure(config: ClientsConfig, limits: TrackerLimits): void {
    this.config = config;
    this.limits = limits;
  }

  /** A reload changed proxy.trustedProxies: open connections' X-Forwarded-* are believed, or not, from their next request. */
  retrust(trusted: (ip: string) => boolean): void {
    for (const connection of this.connections.values()) connection.trustedPeer = trusted(connection.ip);
  }

  get size(): number {
    return this.connections.size;
  }

  get overloaded(): boolean {
    return this.connections.size >= this.config.overload.connections;
  }

  /**
   * Registers a new connection; false when the client is over its limit, or the proxy at its own,
   * and nothing idle can give way (the oldest idle connection of that client, or of anyone, is
   * closed to make room).
   */
  admit(socket: Socket, ip: string, exempt: boolean, trustedPeer: boolean): boolean {
    const limit = this.config.maxConnectionsPerIp;
    const siblings = this.byIp.get(ip);
    if (!exempt && limit > 0 && siblings && siblings.size >= limit && !this.closeOldestIdle(siblings.values())) return false;
    if (this.connections.size >= this.config.maxConnections && !this.closeOldestIdle(this.idleOrder, true)) return false;
    const connection: TrackedConnection = {
      socket,
      ip,
      trustedPeer,
      requestClass: 'page',
      active: 0,
      requests: 0,
      idleSince: Date.now(),
      bytesReadWhenIdle: socket.bytesRead,
      unparsedSince: undefined,
      closeWhenAnswered: false,
      waiting: [],
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
    this.idleOrder.add(connection);
    socket.once('close', () => this.forget(connection));
    return true;
  }

  /** The connection a socket was admitted as; undefined for one that was never admitted or has closed. */
  get(socket: Socket): TrackedConnection | undefined {
    return this.connections.get(socket);
  }

  /** A request started on the connection (every request, whatever answers it). */
  requestStarted(connection: TrackedConnection | undefined): void {
    if (!connection) return;
    connection.active++;
    connection.requests++;
    connection.unparsedSince = undefined;
    this.idleOrder.delete(connection);
  }

  /** The request was classified; true when the connection must close after it (its class's request limit, or shutdown). */
  classified(connection: TrackedConnection | undefined, requestClass: RequestClass): boolean {
    if (!connection) return true;
    connection.requestClass = requestClass;
    const max = this.config[requestClass].maxRequestsPerSocket;
    return this.shuttingDown || this.retiring || (max > 0 && connection.requests >= max);
  }

  /**
   * Runs a request's handling now when nothing else is in flight on its connection, else after
   * the requests before it, one at a time as nginx and HAProxy do: Node's parser hands over every
   * pipelined request at once, and each would otherwise take a queue place or a worker of its own.
   * False when maxPipelined already wait on the connection (the caller refuses this one).
   */
  inTurn(connection: TrackedConnection | undefined, handle: () => void): boolean {
    if (!connection || (connection.active === 0 && connection.waiting.length === 0)) {
      handle();
      return true;
    }
    if (connection.waiting.length >= this.config.maxPipelined) return false;
    connection.waiting.push(handle);
    return true;
  }

  requestFinished(connection: TrackedConnection | undefined): void {
    if (!connection || connection.active === 0) return;
    connection.active--;
    if (connection.active > 0) return;
    const next = connection.waiting.shift();
    if (next) return next();
    // (retiring: a response that began before said keep-alive, so its client may already be sending
    // the next request: the connection stays and that request is answered with Connection: close)
    if (this.shuttingDown || connection.closeWhenAnswered) return this.close(connection);
    connection.idleSince = Date.now();
    connection.bytesReadWhenIdle = connection.socket.bytesRead;
    // a response can end after its socket has closed: a connection already forgotten stays so
    if (this.connections.get(connection.socket) === connection) this.idleOrder.add(connection);
  }

  /**
   * The connection can carry nothing more (its parser gave up, or it asked for more than its
   * turn): when it still owes answers to requests before that point, it closes once they are
   * given, so none is cut or overwritten. False when it owes none (the caller closes it now).
   */
  closeWhenAnswered(connection: TrackedConnection): boolean {
    if (connection.active === 0 && connection.waiting.length === 0) return false;
    connection.closeWhenAnswered = true;
    return true;
  }

  /** WebSocket and other upgrades: long-lived, never idle-timed by the HTTP policy. */
  upgraded(socket: Socket): void {
    const connection = this.connections.get(socket);
    if (!connection) return;
    connection.upgraded = true;
    this.idleOrder.delete(connection);
  }

  counts(): ConnectionCounts {
    const byClass = {} as ConnectionCounts['byClass'];
    for (const requestClass of CLASSES) {
      byClass[requestClass] = { active: 0, idle: 0 };
    }
    for (const connection of this.connections.values()) {
      const bucket = byClass[connection.requestClass];
      if (connection.active > 0 || connection.upgraded) bucket.active++;
      else bucket.idle++;
    }
    return { total: this.connections.size, idleListed: this.idleOrder.size, overloaded: this.overloaded, byClass };
  }

  /** Graceful shutdown: close what is idle now, and every other connection when its response ends. */
  beginShutdown(): void {
    this.shuttingDown = true;
    const now = Date.now();
    for (const connection of [...this.connections.values()]) {
      if (this.isIdle(connection, now)) this.close(connection);
    }
  }

  /** A successor took over: each connection closes after its next response; idle ones at their idle timeout, never early. */
  retire(): void {
    this.retiring = true;
  }

  get isRetiring(): boolean {
    return this.retiring;
  }

  destroyAll(): void {
    for (const connection of [...this.connections.values()]) connection.socket.destroy();
  }

  private idleTimeoutMs(connection: TrackedConnection): number {
    const normal = this.config[connection.requestClass].idleTimeoutMs;
    return this.overloaded ? Math.min(normal, this.config.overload.idleTimeoutMs) : normal;
  }

  /**
   * The proxy's scheduler runs this every 100 ms: idle timeouts are enforced by one sweep instead
   * of a timer per request (a keep-alive connection going idle after every response would
   * otherwise arm and clear a timer each time).
   *
   * Closes idle connections past their class's idle timeout (shorter under overload; at once in a
   * shutdown). Bytes that arrive count as a request on its way, for as long as a request's headers
   * may take (bare CRLFs between messages, which make no request, buy no more). A timer runs
   * before the event loop reads sockets, so a client's next request may sit unread in the kernel
   * when this runs late: the close waits for setImmediate, after that read, and spares a connection
   * whose byte count moved since it went idle (its request is being parsed). What is left of the
   * race is a request arriving within that one turn of the loop.
   */
  closeExpiredIdle(now: number): void {
    const expired: TrackedConnection[] = [];
    for (const connection of this.idleOrder) {
      if (this.connections.get(connection.socket) !== connection) {
        this.idleOrder.delete(connection); // (deleting the current entry keeps a Set's iteration valid)
        continue;
      }
      if (connection.socket.bytesRead !== connection.bytesReadWhenIdle) connection.unparsedSince ??= now;
      if (this.isIdle(connection, now) && (this.shuttingDown || now - connection.idleSince >= this.idleTimeoutMs(connection))) expired.push(connection);
    }
    if (expired.length === 0) return;
    setImmediate(() => {
      const later = Date.now();
      for (const connection of expired) if (this.isIdle(connection, later)) this.close(connection);
    });
  }

  /**
   * Nothing in flight, not a tunnel, still ours, and no request on its way: bytes read since the
   * last response are one, until they have made none for a headers timeout.
   */
  private isIdle(connection: TrackedConnection, now: number): boolean {
    if (connection.active > 0 || connection.upgraded || this.connections.get(connection.socket) !== connection) return false;
    if (connection.socket.bytesRead === connection.bytesReadWhenIdle) return true;
    return connection.unparsedSince !== undefined && now - connection.unparsedSince >= this.limits.headersTimeoutMs;
  }

  /**
   * Closes the connection idle longest among these; false when none is idle. Candidates in the
   * order they went idle (idleOrder) end the search at the first idle one, without a scan of all.
   */
  private closeOldestIdle(candidates: Iterable<TrackedConnection>, inIdleOrder = false): boolean {
    const now = Date.now();
    let oldest: TrackedConnection | undefined;
    for (const connection of candidates) {
      if (!this.isIdle(connection, now) || (oldest && connection.idleSince >= oldest.idleSince)) continue;
      oldest = connection;
      if (inIdleOrder) break;
    }
    if (oldest) this.close(oldest);
    return oldest !== undefined;
  }

  private close(connection: TrackedConnection): void {
    connection.socket.destroy();
    this.forget(connection);
  }

  private forget(connection: TrackedConnection): void {
    connection.waiting.length = 0;
    this.idleOrder.delete(connection);
    if (!this.connections.delete(connection.socket)) return;
    const group = this.byIp.get(connection.ip);
    group?.delete(connection);
    if (group?.size === 0) this.byIp.delete(connection.ip);
  }
}
