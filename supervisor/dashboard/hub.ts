import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../../lib/log.ts';
import { sameOrigin, type Access } from './access.ts';
import type { Cursor, LiveState } from './live-state.ts';
import type { Session } from './sessions.ts';

export const WS_PATH = '/ws';
/** WebSocket close code (application range) for a session that logged out or expired */
export const SESSION_ENDED = 4001;

export interface HubOptions {
  /** pushes happen at most this often */
  tickMs: number;
  /** a client with more than this queued in its socket is skipped until it catches up */
  maxBufferedBytes: number;
  maxClients: number;
  /** a client that answers no ping for this long is dropped */
  heartbeatMs: number;
}

export const DEFAULT_HUB_OPTIONS: HubOptions = { tickMs: 500, maxBufferedBytes: 256 * 1024, maxClients: 200, heartbeatMs: 30_000 };

interface Client {
  socket: WebSocket;
  /** the login session it came in with (none for Bearer clients) */
  session: Session | undefined;
  /** undefined until the first (snapshot) message went out */
  cursor: Cursor | undefined;
  alive: boolean;
}

function refuse(socket: Duplex, status: number, reason: string, extra = ''): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length}\r\n${extra}\r\n${reason}`);
  socket.destroy();
}

/**
 * Live dashboard updates over WebSocket: a snapshot on connect, then what changed at most every
 * `tickMs`. A slow reader is never queued more than about `maxBufferedBytes`: it is skipped while
 * its socket is full and then sent one update covering everything it missed (or a fresh snapshot
 * when it missed more than the live state keeps).
 */
export class DashboardHub {
  readonly options: HubOptions;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false });
  private readonly clients = new Set<Client>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** clients skipped because their socket was full (for tests and logs) */
  skipped = 0;

  constructor(
    private readonly live: LiveState,
    private readonly access: Access,
    private readonly log: Logger,
    options: Partial<HubOptions> = {},
  ) {
    this.options = { ...DEFAULT_HUB_OPTIONS, ...options };
  }

  /** Bytes queued across all clients' sockets. */
  bufferedBytes(): number {
    let total = 0;
    for (const client of this.clients) total += client.socket.bufferedAmount;
    return total;
  }

  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(request, socket, head));
    this.timers.push(setInterval(() => this.push(), this.options.tickMs));
    this.timers.push(setInterval(() => this.heartbeat(), this.options.heartbeatMs));
  }

  close(): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const client of this.clients) client.socket.terminate();
    this.clients.clear();
    this.wss.close();
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (new URL(request.url ?? '/', 'http://dashboard').pathname !== WS_PATH) return refuse(socket, 404, 'Not Found');
    const verdict = this.access.authenticate(request.headers, request.socket.remoteAddress ?? '');
    if (!verdict.ok) {
      return verdict.status === 429 ? refuse(socket, 429, 'Too Many Requests', `Retry-After: ${verdict.retryAfterSec}\r\n`) : refuse(socket, 401, 'Unauthorized');
    }
    // Cookies ride along on cross-site WebSocket handshakes; only our own page may use them.
    const secure = 'encrypted' in request.socket && Boolean(request.socket.encrypted);
    if ((verdict.via === 'session' || request.headers.origin !== undefined) && !sameOrigin(request.headers, secure)) {
      return refuse(socket, 403, 'Forbidden');
    }
    if (this.clients.size >= this.options.maxClients) return refuse(socket, 503, 'Service Unavailable');
    this.wss.handleUpgrade(request, socket, head, (ws) => this.connected(ws, verdict.via === 'session' ? verdict.session : undefined));
  }

  /** Closes the sockets of a session that logged out. */
  endSession(sessionId: string): void {
    for (const client of this.clients) if (client.session?.id === sessionId) client.socket.close(SESSION_ENDED, 'session ended');
  }

  private connected(socket: WebSocket, session: Session | undefined): void {
    const client: Client = { socket, session, cursor: undefined, alive: true };
    this.clients.add(client);
    socket.on('pong', () => (client.alive = true));
    socket.on('message', () => {}); // the page has nothing to say; actions go through the HTTP API
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'dashboard socket error'));
    socket.on('close', () => this.clients.delete(client));
    this.send(client);
  }

  private push(): void {
    if (this.clients.size === 0) return;
    // Clients at the same cursor get the same bytes: serialise once per tick, not once per client.
    const encoded = new Map<string, string>();
    const latest = this.live.cursor();
    for (const client of this.clients) {
      if (client.socket.readyState !== WebSocket.OPEN) continue;
      if (client.cursor?.sample === latest.sample && client.cursor.event === latest.event && client.cursor.live === latest.live) continue;
      if (client.socket.bufferedAmount > this.options.maxBufferedBytes) {
        this.skipped++;
        continue;
      }
      this.send(client, encoded);
    }
  }

  private send(client: Client, encoded = new Map<string, string>()): void {
    const key = client.cursor ? `${client.cursor.sample}.${client.cursor.event}` : 'snapshot';
    let text = encoded.get(key);
    if (text === undefined) {
      const message = (client.cursor && this.live.updateSince(client.cursor)) || this.live.snapshot();
      text = JSON.stringify(message);
      encoded.set(key, text);
    }
    client.cursor = this.live.cursor();
    client.socket.send(text);
  }

  private heartbeat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        client.socket.terminate();
        continue;
      }
      if (client.session && !this.access.sessions.get(client.session.cookieValue)) {
        client.socket.close(SESSION_ENDED, 'session expired');
        continue;
      }
      client.alive = false;
      client.socket.ping();
    }
  }
}
