import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { bearerMatches, requireAdminToken } from '../lib/admin-token.ts';
import type { Logger } from '../lib/log.ts';
import type { ProcessInfo } from './replacement.ts';
import type { ReloadOutcome } from './reload.ts';
import type { ProxyStats } from './stats.ts';
import type { UpstreamState } from './upstream.ts';

/** What the control API needs of a proxy, and no more. */
export interface ControlledProxy {
  state(): unknown;
  readonly stats: Pick<ProxyStats, 'registry' | 'finishedMinutes'>;
  /** the worker's snapshot after the change, or undefined when there is no such worker */
  setWorkerState(name: string, state: UpstreamState): { name: string; state: UpstreamState } | undefined;
  /** re-reads the config file the proxy started with and applies what can change live */
  reloadConfig(): ReloadOutcome;
}

/** The proxy process's own lifecycle: which one it is, and its replacement (proxy/replacement.ts). */
export interface ControlledProcess {
  info(): ProcessInfo;
  requestReplacement(): Promise<{ ok: true; successor: { pid: number; generation: number } } | { ok: false; error: string }>;
}

const SETTABLE_STATES: ReadonlySet<string> = new Set<UpstreamState>(['ready', 'draining', 'down']);
const BODY_LIMIT = 4096;

function send(res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > BODY_LIMIT) reject(new Error('body too large'));
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(text || '{}'));
      } catch {
        reject(new Error('body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

/**
 * The proxy's loopback control API, for the supervisor (Bearer admin token):
 *   GET /state                      fleet as this proxy sees it, connections, lane summaries
 *   GET /stats/minutes?since=<iso>  finished per-minute lane stats
 *   GET /metrics                    Prometheus text of this proxy
 *   PUT /workers/<name>/state       {"state":"draining"|"ready"|"down"}
 *   POST /reload                    re-read the config file and apply it: 200 {changes, notApplied}
 *                                   (summary lines), or 422 {error, problems} and nothing changes
 *   POST /restart                   replace this proxy process by a fresh one (proxy/master.ts);
 *                                   answers once the successor listens: 202 {from, to}, or 409
 */
export class ControlServer {
  readonly server: http.Server;

  constructor(
    private readonly proxy: ControlledProxy,
    private readonly token: string,
    private readonly log: Logger,
    private readonly lifecycle?: ControlledProcess,
  ) {
    requireAdminToken(token, 'proxy control API');
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => send(res, 400, { error: error.message }));
    });
  }

  async listen(port: number, host: string): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Once this process is being replaced, each answer closes its connection: a client's next call
    // opens a new one, which the successor accepts, rather than asking this process again over a
    // kept-alive socket (restart-proxy then saw the old generation still answering, under load).
    if (this.lifecycle?.info().retiring) res.setHeader('connection', 'close');
    if (!bearerMatches(req.headers.authorization, this.token)) return send(res, 401, { error: 'admin token required' });
    const url = new URL(req.url ?? '/', 'http://control');
    if (req.method === 'GET' && url.pathname === '/state') {
      const state = this.proxy.state() as Record<string, unknown>;
      return send(res, 200, this.lifecycle ? { ...state, process: this.lifecycle.info() } : state);
    }
    if (req.method === 'POST' && url.pathname === '/restart') {
      if (!this.lifecycle) return send(res, 409, { error: 'this proxy cannot be replaced in place' });
      const from = this.lifecycle.info();
      const answer = await this.lifecycle.requestReplacement();
      if (!answer.ok) return send(res, 409, { error: answer.error });
      this.log.info({ from: from.pid, to: answer.successor.pid }, 'proxy replacement asked over the control API');
      res.setHeader('connection', 'close');
      return send(res, 202, { from: { pid: from.pid, generation: from.generation }, to: answer.successor });
    }
    if (req.method === 'POST' && url.pathname === '/reload') {
      const outcome = this.proxy.reloadConfig();
      if (!outcome.ok) return send(res, 422, { error: outcome.error, problems: outcome.problems });
      return send(res, 200, { changes: outcome.changes, notApplied: outcome.notApplied });
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      return send(res, 200, await this.proxy.stats.registry.metrics(), this.proxy.stats.registry.contentType);
    }
    if (req.method === 'GET' && url.pathname === '/stats/minutes') {
      const since = url.searchParams.get('since');
      const sinceDate = since ? new Date(since) : undefined;
      if (sinceDate && Number.isNaN(sinceDate.getTime())) return send(res, 400, { error: 'since must be an ISO date' });
      return send(res, 200, this.proxy.stats.finishedMinutes(sinceDate));
    }
    const stateRoute = /^\/workers\/([a-z0-9-]+)\/state$/.exec(url.pathname);
    if (req.method === 'PUT' && stateRoute) {
      const body = (await readJson(req)) as { state?: unknown };
      if (typeof body.state !== 'string' || !SETTABLE_STATES.has(body.state)) {
        return send(res, 400, { error: 'expected {"state": "ready" | "draining" | "down"}' });
      }
      const worker = this.proxy.setWorkerState(stateRoute[1], body.state as UpstreamState);
      if (!worker) return send(res, 404, { error: `no worker ${stateRoute[1]}` });
      this.log.info({ worker: worker.name, state: worker.state }, 'worker state set over the control API');
      return send(res, 200, worker);
    }
    send(res, 404, { error: 'unknown route' });
  }
}
