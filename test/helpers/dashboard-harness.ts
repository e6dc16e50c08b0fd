// The supervisor's HTTP API and dashboard in-process, in front of stand-ins: workers that answer
// health checks, a proxy control API with settable state, and a PM2 whose restarts give a worker
// a new pid. Fast enough for route-by-route API and WebSocket tests; the e2e test runs the real stack.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { validateConfig } from '../../lib/config.ts';
import { buildApi, type ApiOptions } from '../../supervisor/api.ts';
import type { WorkerHealth } from '../../supervisor/fleet.ts';
import type { Pm2Client, Pm2Process } from '../../supervisor/pm2-client.ts';
import { ProxyControlClient } from '../../supervisor/proxy-control.ts';
import { Supervisor } from '../../supervisor/supervisor.ts';
import type { DashboardHub } from '../../supervisor/dashboard/hub.ts';
import type { ProxyLiveState } from '../../supervisor/dashboard/views.ts';
import { waitFor } from './http.ts';

export const HARNESS_TOKEN = 'dashboard-test-token-abcdef0123456789';

async function listen(server: http.Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1');
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);
  return (server.address() as AddressInfo).port;
}

function json(res: http.ServerResponse, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(200, { 'content-type': type });
  res.end(text);
}

class FakeWorker {
  health: WorkerHealth;
  readonly server = http.createServer((_req, res) => json(res, this.health));

  constructor(pool: string, index: number, pid: number) {
    this.health = { pid, pool, index, inflight: 0, served: 0, rssBytes: 80 * 1048576, heapUsedBytes: 20 * 1048576, uptimeSec: 10 };
  }
}

/** `count` workers on consecutive ports (the supervisor derives ports from portBase). */
async function startWorkers(pool: string, count: number, firstPid: number): Promise<{ portBase: number; workers: FakeWorker[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const portBase = 30000 + Math.floor(Math.random() * 9000);
    const workers = Array.from({ length: count }, (_, index) => new FakeWorker(pool, index, firstPid + index));
    try {
      for (const [index, worker] of workers.entries()) await listen(worker.server, portBase + index);
      return { portBase, workers };
    } catch {
      for (const worker of workers) worker.server.close();
    }
  }
  throw new Error('no free port range for the fake workers');
}

export function proxyStateOf(workers: Map<string, FakeWorker>, states: Map<string, string>): ProxyLiveState {
  const pools = new Map<string, ProxyLiveState['pools'][number]>();
  for (const [name, worker] of workers) {
    const pool = pools.get(worker.health.pool) ?? { name: worker.health.pool, queueDepth: 0, queueFull: 0, queueTimeouts: 0, workers: [] };
    pool.workers.push({ name, state: states.get(name) ?? 'ready', inflight: worker.health.inflight, failures: 0 });
    pools.set(pool.name, pool);
  }
  const lane = (name: string) => ({ lane: name, totalRequests: 0, totalErrors: 0, minute: { p50Ms: 0, p99Ms: 0 } });
  return {
    inflight: 0,
    draining: false,
    connections: { total: 0, overloaded: false, byClass: { static: { active: 0, idle: 0 }, browser: { active: 0, idle: 0 }, page: { active: 0, idle: 0 }, clone: { active: 0, idle: 0 }, bot: { active: 0, idle: 0 } } },
    pools: [...pools.values()],
    lanes: ['static', 'browser', 'page', 'clone', 'bot'].map(lane),
  };
}

export interface DashboardHarness {
  url: string;
  port: number;
  supervisor: Supervisor;
  workers: Map<string, FakeWorker>;
  /** what the fake proxy's GET /state answers; tests change it to simulate traffic */
  proxy: ProxyLiveState;
  restarts: string[];
  /** the fake proxy's control API */
  proxyControlUrl: string;
  app: ReturnType<typeof buildApi>;
  hub: DashboardHub;
  close(): Promise<void>;
}

/** `redisUrl`: the supervisor discovers proxies announced there (signed with HARNESS_TOKEN's fleet key). */
export async function startDashboardHarness({ redisUrl, ...options }: Pick<ApiOptions, 'access' | 'dashboard'> & { redisUrl?: string } = {}): Promise<DashboardHarness> {
  const web = await startWorkers('web', 2, 5000);
  const clone = await startWorkers('clone', 2, 6000);
  const workers = new Map([...web.workers, ...clone.workers].map((worker) => [`${worker.health.pool}-${worker.health.index}`, worker]));
  const proxyStates = new Map<string, string>();
  const harness = { proxy: proxyStateOf(workers, proxyStates) } as DashboardHarness;

  const proxyServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const put = /^\/workers\/([a-z0-9-]+)\/state$/.exec(url.pathname);
    if (req.method === 'PUT' && put) {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        proxyStates.set(put[1], (JSON.parse(body) as { state: string }).state);
        for (const pool of harness.proxy.pools) for (const worker of pool.workers) if (worker.name === put[1]) worker.state = proxyStates.get(put[1])!;
        json(res, { name: put[1] });
      });
      return;
    }
    if (url.pathname === '/state') return json(res, harness.proxy);
    if (url.pathname === '/metrics') return json(res, '# HELP switchyard_requests_total Requests\n# TYPE switchyard_requests_total counter\nswitchyard_requests_total{lane="page",code="200"} 3\n', 'text/plain');
    if (url.pathname === '/stats/minutes') return json(res, []);
    res.writeHead(404).end();
  });
  const proxyPort = await listen(proxyServer);

  const restarts: string[] = [];
  let nextPid = 7000;
  const pm2List = (): Pm2Process[] =>
    [...workers.values()].map((worker, pmId) => ({ pmId, name: `worker-${worker.health.pool}`, pid: worker.health.pid, status: 'online', instance: worker.health.index, restarts: 0 }));
  const pm2 = {
    connect: async () => undefined,
    disconnect: () => undefined,
    onProcessEvent: async () => undefined,
    onProcessMessage: async () => undefined,
    list: async () => pm2List(),
    restart: async (pmId: number) => {
      const worker = [...workers.values()][pmId];
      restarts.push(`${worker.health.pool}-${worker.health.index}`);
      worker.health = { ...worker.health, pid: nextPid++, served: 0, uptimeSec: 0 };
    },
  } as unknown as Pm2Client;

  const config = validateConfig(
    { pools: { web: { instances: 2, portBase: web.portBase, drainTimeoutSec: 2 }, clone: { instances: 2, portBase: clone.portBase, drainTimeoutSec: 2 } }, lanes: { bot: { pool: 'web' } } },
    '(dashboard test)',
  );
  const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  const supervisor = new Supervisor({
    config,
    log,
    pm2,
    proxies: [new ProxyControlClient(`http://127.0.0.1:${proxyPort}`, HARNESS_TOKEN)],
    timing: { healthIntervalMs: 200, reconcileMs: 1000, drainPollMs: 50 },
    ...(redisUrl && { redis: { url: redisUrl, adminToken: HARNESS_TOKEN } }),
  });
  await supervisor.start();
  const app = buildApi({ supervisor, token: HARNESS_TOKEN, log, ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  await waitFor(() => supervisor.fleet.all().every((worker) => worker.state === 'ready'), 'fake workers ready');

  return Object.assign(harness, {
    url: `http://127.0.0.1:${port}`,
    port,
    supervisor,
    workers,
    restarts,
    proxyControlUrl: `http://127.0.0.1:${proxyPort}`,
    app,
    hub: app.dashboard.hub,
    async close() {
      await app.close();
      await supervisor.stop();
      proxyServer.close();
      for (const worker of workers.values()) worker.server.close();
    },
  });
}

/** Logs in through the form like a browser: the session cookie and the page's CSRF token. */
export async function login(url: string, token = HARNESS_TOKEN): Promise<{ cookie: string; csrf: string }> {
  const response = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token }), headers: { origin: url } });
  if (response.status !== 303) throw new Error(`login answered ${response.status}`);
  const cookie = response.headers.get('set-cookie')!.split(';')[0];
  const page = await (await fetch(`${url}/`, { headers: { cookie } })).text();
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)?.[1];
  if (!csrf) throw new Error('no CSRF token on the dashboard page');
  return { cookie, csrf };
}
