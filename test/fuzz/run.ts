// Runs seeded hostile conversations (cases.ts) against a real proxy process in front of two
// upstream app processes, over raw sockets, and reports what happened: whether the proxy process
// stayed up, whether every conversation ended (the server answered or closed within a deadline),
// its memory, and whether a normal request still works afterwards.
import { startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../helpers/processes.ts';
import { request, sleep } from '../helpers/http.ts';
import { runConversations } from './conversation.ts';

export interface FuzzOptions {
  seed: number;
  count: number;
  /** conversations at once */
  concurrency?: number;
  /** the first case index (to resume or shard a long run) */
  from?: number;
  progress?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  /** first status the server sent, or how the conversation ended without one */
  outcomes: Record<string, number>;
  /** conversations the server neither answered to the end nor closed within the deadline */
  hung: string[];
  /** the proxy's exit code or signal if it went down during the run */
  proxyExit: string | undefined;
  rssMb: { baseline: number; peak: number; end: number };
  /** status of a normal request after the run */
  afterStatus: number;
  /** the proxy's error log lines (a throw caught by its containment is a bug), the first few */
  proxyErrors: string[];
  /** what the proxy still held after the run went quiet: worker slots, queue places, bodies, connections */
  leftovers: string[];
  durationMs: number;
}

// Every timeout short, so that a conversation left waiting by a bad client ends in seconds.
const FUZZ_CONFIG = (targets: string[]) => {
  const policy = { idleTimeoutMs: 300, requestTimeoutMs: 2000 };
  return {
    proxy: {
      host: '127.0.0.1',
      port: 0,
      limits: { headersTimeoutMs: 1000, maxBodyBytes: 1024 * 1024, maxHeaderBytes: 8192, maxUrlBytes: 4096 },
      upstream: { responseTimeoutMs: 1500, connectTimeoutMs: 500 },
      bodies: { minBytesPerSec: 100, rateWindowMs: 500, memoryBytes: 16 * 1024, spoolTotalBytes: 64 * 1024 * 1024 },
      upgrades: { idleTimeoutMs: 1000 },
      clients: { static: policy, browser: policy, page: policy, clone: policy, bot: policy, maxConnectionsPerIp: 0 },
    },
    bots: { tokens: ['fuzz-bot-token-0001'] },
    pools: { web: { targets, concurrency: 2, queue: { max: 20, timeoutMs: 1000 } } },
    lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
  };
};

function exitOf(proxy: ProxyProcess): string | undefined {
  const { exitCode, signalCode } = proxy.child;
  return exitCode !== null ? `exit ${exitCode}` : signalCode !== null ? `signal ${signalCode}` : undefined;
}

/** Anything the proxy holds once every conversation is over is a leak. */
function leftoversIn(state: any): string[] {
  const found: string[] = [];
  if (state.inflight !== 0) found.push(`${state.inflight} requests still in flight`);
  if (state.connections.total !== 0) found.push(`${state.connections.total} client connections still open`);
  if (state.connections.idleListed !== 0) found.push(`${state.connections.idleListed} connections still on the idle list`);
  if (state.responseSpool.diskBytes !== 0 || state.responseSpool.clients !== 0) found.push(`response spool still held: ${JSON.stringify(state.responseSpool)}`);
  if (state.bodies.memoryBytes !== 0 || state.bodies.diskBytes !== 0 || state.bodies.clients !== 0) found.push(`request bodies still held: ${JSON.stringify(state.bodies)}`);
  for (const pool of state.pools) {
    if (pool.queueDepth !== 0) found.push(`pool ${pool.name}: ${pool.queueDepth} still queued`);
    for (const worker of pool.workers) {
      if (worker.inflight !== 0) found.push(`worker ${worker.name}: ${worker.inflight} slots still taken`);
      if (worker.connectionsInUse !== 0 || worker.waitingForConnection !== 0) {
        found.push(`worker ${worker.name}: ${worker.connectionsInUse} connections still carrying a request, ${worker.waitingForConnection} requests waiting for one`);
      }
    }
  }
  return found;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const { seed, count, concurrency = 16, from = 0, progress = () => {} } = options;
  const startedAt = Date.now();
  const apps: AppProcess[] = await Promise.all([startApp('fuzz-a'), startApp('fuzz-b')]);
  const proxy = await startProxyProcess(FUZZ_CONFIG(apps.map((app) => app.address)));
  const proxyErrors: string[] = [];
  proxy.child.stdout!.on('data', (data: Buffer) => {
    for (const line of data.toString().split('\n')) {
      if (/"level":(50|60)/.test(line) && proxyErrors.length < 20) proxyErrors.push(line.slice(0, 2000));
    }
  });
  const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
  try {
    for (let i = 0; i < 50; i++) await request(`${proxy.url}/echo`, { method: 'POST', body: 'warm-up' });
    const baseline = proxy.rssBytes();
    let peak = baseline;
    const outcomes: Record<string, number> = {};
    const hung: string[] = [];
    const done = await runConversations({
      port: proxy.port,
      seed,
      from,
      count,
      concurrency,
      shouldContinue: () => exitOf(proxy) === undefined,
      onOutcome: (fuzz, outcome, ended) => {
        outcomes[outcome.key] = (outcomes[outcome.key] ?? 0) + 1;
        if (outcome.hung) hung.push(`#${fuzz.index} ${fuzz.summary}`);
        if (ended % 500 === 0) {
          peak = Math.max(peak, proxy.rssBytes());
          progress(`fuzz: ${ended}/${count} cases, proxy RSS ${mb(proxy.rssBytes())} MB, ${hung.length} hung`);
        }
      },
    });
    const proxyExit = exitOf(proxy);
    let afterStatus = 0;
    let end = 0;
    const leftovers: string[] = [];
    if (proxyExit === undefined) {
      await sleep(2500); // idle connections close, every timeout fires
      const after = await request(`${proxy.url}/echo`, { method: 'POST', body: 'after' }).catch((error: Error) => ({ status: 0, body: error.message }));
      afterStatus = after.status;
      if (afterStatus !== 200) progress(`fuzz: the request after the run got ${afterStatus}: ${after.body.slice(0, 200)}`);
      end = proxy.rssBytes();
      peak = Math.max(peak, end);
      await sleep(500);
      leftovers.push(...leftoversIn(await proxy.state()));
    }
    return {
      seed,
      cases: done,
      outcomes,
      hung,
      proxyExit: proxyExit ?? exitOf(proxy),
      rssMb: { baseline: mb(baseline), peak: mb(peak), end: mb(end) },
      afterStatus,
      proxyErrors,
      leftovers,
      durationMs: Date.now() - startedAt,
    };
  } finally {
    await proxy.stop();
    await Promise.all(apps.map((app) => app.stop()));
  }
}

/** What makes a run fail: the proxy went down, a conversation hung, something leaked or broke. */
export function failuresOf(report: FuzzReport): string[] {
  const failures: string[] = [];
  if (report.proxyExit) failures.push(`the proxy went down (${report.proxyExit})`);
  if (report.hung.length > 0) failures.push(`${report.hung.length} conversations hung: ${report.hung.slice(0, 5).join('; ')}`);
  if (report.afterStatus !== 200) failures.push(`a normal request afterwards got ${report.afterStatus}`);
  if (report.leftovers.length > 0) failures.push(`the proxy still held: ${report.leftovers.join('; ')}`);
  if (report.proxyErrors.length > 0) failures.push(`the proxy logged errors:\n${report.proxyErrors.join('\n')}`);
  return failures;
}
