import path from 'node:path';
import { cloneCacheMetrics, type CacheCounts, type CloneCacheMetrics, type Vcs } from './clone-cache-metrics.ts';
import { GatedRelay, type GateOptions } from './gated-relay.ts';
import { startProxyProcess, type ProxyProcess } from './processes.ts';
import { recordRequests, type RecordedRequest } from './recorded-request.ts';
import { gitClone, hgClone, type GitProtocol } from './vcs-clones.ts';
import { startWorker, type RunningWorker } from './worker-harness.ts';

// Real reference workers behind a real proxy process, set up for clones: the clone and bot lanes
// on the clone workers, least-outstanding (ip-hash would send every loopback client to one
// worker), and no per-client limit, since a test's 20 clones all come from 127.0.0.1. With a
// gate, each clone worker sits behind its own GatedRelay.

/** a git fetch (v0 wants, v2 command=fetch) or an hg getbundle */
export const CLONE_FETCH = /command=fetch|want [0-9a-f]{40}|cmd=getbundle/;

export interface CloneFleetOptions {
  data: string;
  repos: string;
  /** clone workers (default 2); the web lane gets one more */
  cloneWorkers?: number;
  /** proxy.cloneSharing */
  cloneSharing?: Record<string, unknown>;
  gate?: GateOptions;
}

export interface CloneFleet {
  proxy: ProxyProcess;
  url: string;
  cloneWorkers: RunningWorker[];
  /** per clone worker, when gated */
  gates: GatedRelay[];
  /** the proxy's data directory */
  dataDir: string;
  metrics(): Promise<CloneCacheMetrics>;
  counts(vcs: Vcs): Promise<CacheCounts>;
  /** app requests the clone workers have answered, summed */
  served(): Promise<number>;
  stop(): Promise<void>;
}

export async function startCloneFleet(options: CloneFleetOptions): Promise<CloneFleet> {
  const { data, repos } = options;
  const [web, ...cloneWorkers] = await Promise.all(Array.from({ length: 1 + (options.cloneWorkers ?? 2) }, () => startWorker({ data, repos })));
  const gates = options.gate ? cloneWorkers.map((worker) => new GatedRelay(worker.port, options.gate!)) : [];
  const targets = options.gate ? await Promise.all(gates.map(async (gate) => `127.0.0.1:${await gate.start()}`)) : cloneWorkers.map((worker) => `127.0.0.1:${worker.port}`);
  const lane = { pool: 'clone', balance: 'least-outstanding' };
  const proxy = await startProxyProcess({
    proxy: { host: '127.0.0.1', port: 0, healthCheck: { intervalMs: 200 }, ...(options.cloneSharing ? { cloneSharing: options.cloneSharing } : {}) },
    pools: {
      web: { targets: [`127.0.0.1:${web.port}`] },
      clone: { targets, queue: { max: 500, timeoutMs: 300_000 }, perClient: { maxInFlight: 0, maxQueued: 500 } },
    },
    lanes: { clone: lane, bot: lane },
  });
  const metrics = async () => cloneCacheMetrics(await proxy.metrics());
  return {
    proxy,
    url: proxy.url,
    cloneWorkers,
    gates,
    dataDir: path.dirname(proxy.configFile),
    metrics,
    counts: async (vcs) => (await metrics()).requests[vcs],
    served: async () => (await Promise.all(cloneWorkers.map(async (worker) => (await worker.health()).served))).reduce((a, b) => a + b, 0),
    async stop() {
      await proxy.stop();
      for (const gate of gates) gate.open();
      await Promise.all(gates.map((gate) => gate.close()));
      await Promise.all([web, ...cloneWorkers].map((worker) => worker.stop('SIGKILL')));
    },
  };
}

export type CloneKind = { vcs: 'git'; protocol: GitProtocol } | { vcs: 'hg' };

/** Clones `repo` the way the tests' clients do, into `dir`, against a base URL. */
export function cloneWith(kind: CloneKind, url: string, dir: string): Promise<void> {
  return kind.vcs === 'git' ? gitClone(url, dir, kind.protocol) : hgClone(url, dir);
}

/**
 * The request a real full clone of `repo` sends for its pack or bundle, recorded against a worker
 * directly (so no proxy has seen it yet). Replayed through the proxy, it shares a generation with
 * the same client's clones.
 */
export async function recordCloneFetch(workerPort: number, kind: CloneKind, repo: string, dir: string): Promise<RecordedRequest> {
  const requests = await recordRequests(workerPort, (base) => cloneWith(kind, `${base}/${repo}`, dir));
  const fetches = requests.filter((request) => CLONE_FETCH.test(`${request.path} ${request.body.toString('latin1')}`));
  if (fetches.length !== 1) throw new Error(`expected one fetch in the clone, got ${fetches.length}: ${requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  return fetches[0];
}
