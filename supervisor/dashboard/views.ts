// What the dashboard shows, computed from the supervisor's fleet snapshot and one proxy's /state.
// Pure functions: the sampler feeds them two consecutive proxy states and the time between.
import type { Supervisor } from '../supervisor.ts';
import type { FleetEvent } from '../history/types.ts';
import type { ProxyPoolView, SpoolUsageView } from '../proxy-control.ts';

type FleetSnapshot = ReturnType<Supervisor['snapshot']>;

/** The parts of the proxy's control API GET /state the dashboard reads. */
export interface ProxyLiveState {
  inflight: number;
  draining: boolean;
  connections: { total: number; overloaded: boolean; byClass: Record<string, { active: number; idle: number }> };
  pools: Array<Omit<ProxyPoolView, 'workers'> & { workers: Array<{ name: string; state: string; inflight: number; failures: number }> }>;
  lanes: Array<{ lane: string; totalRequests: number; totalErrors: number; minute: { p50Ms: number; p99Ms: number } }>;
  responseSpool?: SpoolUsageView;
  /** absent from proxies before clone sharing */
  cloneSharing?: CloneSharingView;
}

/** Clone sharing (clone and bot lanes together): requests by how they were answered since the proxy started, and its spool now. */
export interface CloneSharingView {
  requests: { miss: number; coalesced: number; hit: number; bypass: number };
  diskBytes: number;
  entries: number;
  /** requests waiting for a shared answer to begin */
  waiting: number;
}

/** the lane whose row shows clone sharing (which covers the bot lane's clones too) */
const CLONE_SHARING_LANE = 'clone';

/** Which pool serves each lane, and how many requests one worker of each pool takes at once. */
export interface LaneRouting {
  laneToPool: Record<string, string>;
  concurrency: Record<string, number>;
}

/** A client taking a lane's pool now; `client` is a fair-share key from the network (untrusted text). */
export interface TopClientView {
  client: string;
  holding: number;
  queued: number;
  /** it holds every slot of the pool's ready workers */
  holdsAll: boolean;
}

/** how many of a lane's top clients the dashboard shows */
export const TOP_CLIENTS_PER_LANE = 3;

export interface LaneView {
  lane: string;
  pool: string | null;
  reqPerSec: number;
  errorsPerSec: number;
  /** errors / requests over the last sample interval */
  errorRate: number;
  /** of the running minute (exact, from the proxy's HDR histogram) */
  p50Ms: number;
  p99Ms: number;
  totalRequests: number;
  totalErrors: number;
  queueDepth: number | null;
  queueTimeouts: number | null;
  queueFull: number | null;
  /** 429s of the lane's pool to clients past their queue share, since the proxy started */
  clientShareRefused: number | null;
  /** who holds the most of the lane's pool and its queue now, biggest first */
  topClients: TopClientView[];
  connections: { active: number; idle: number };
  /** clone sharing, on the clone lane's row only (null elsewhere, or from a proxy without it) */
  cloneSharing: CloneSharingView | null;
}

export interface WorkerView {
  name: string;
  pool: string;
  index: number;
  state: string;
  stateSince: string;
  pid: number | null;
  restarts: number;
  inflight: number | null;
  served: number | null;
  rssBytes: number | null;
  uptimeSec: number | null;
  limits: { maxRequests: number; maxAgeSec: number; maxRssBytes: number };
  pendingRecycle: string | null;
  /** how the proxy sees it: state and failed forwards */
  proxy: { state: string; inflight: number; failures: number } | null;
}

export interface Summary {
  workersReady: number;
  workersTotal: number;
  reqPerSec: number;
  errorsPerSec: number;
  queueDepth: number;
  clientConnections: number | null;
  /** responses the proxy holds for slow clients (null: proxy unreachable or older than spooling) */
  responseSpool: SpoolUsageView | null;
  proxyReachable: boolean;
  history: FleetSnapshot['history'];
}

export interface LiveView {
  at: string;
  summary: Summary;
  workers: WorkerView[];
  lanes: LaneView[];
  pools: Array<{ name: string; maxUnavailable: number }>;
  /** every proxy of the site, as GET /api/fleet lists them */
  proxies: FleetSnapshot['proxies'];
  /** every host of the site (one on a single host), as GET /api/fleet lists them */
  hosts: FleetSnapshot['hosts'];
}

/** One point of every chart series; arrays follow the order of `SeriesKeys`. */
export interface Sample {
  t: number;
  rps: number[];
  p99: number[];
  queue: number[];
  rss: Array<number | null>;
}

export interface SeriesKeys {
  lanes: string[];
  pools: string[];
  workers: string[];
}

export interface EventView {
  seq: number;
  at: string;
  kind: string;
  pool?: string;
  worker?: string;
  reason?: string;
  detail?: Record<string, unknown>;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

function rate(current: number, previous: number | undefined, seconds: number): number {
  // A restarted proxy starts counting from zero again: that interval reads as idle.
  if (previous === undefined || current < previous || seconds <= 0) return 0;
  return (current - previous) / seconds;
}

type LivePool = ProxyLiveState['pools'][number];

/** Slots on the pool's ready workers: what one client would hold to shut everyone else out. */
function readySlots(pool: LivePool, concurrency: number): number {
  return pool.workers.filter((worker) => worker.state === 'ready').length * concurrency;
}

/** The lane's part of its pool's top clients (the proxy reports them for all of the pool's lanes). */
export function topClientsOf(pool: LivePool | undefined, lane: string, routing: LaneRouting): TopClientView[] {
  if (!pool?.topClients) return [];
  const slots = readySlots(pool, routing.concurrency[pool.name] ?? 1);
  return pool.topClients
    .filter((share) => share.lane === lane)
    .sort((a, b) => b.holding + b.queued - (a.holding + a.queued))
    .slice(0, TOP_CLIENTS_PER_LANE)
    .map(({ client, holding, queued }) => ({ client, holding, queued, holdsAll: holding > 0 && holding >= slots }));
}

export function laneViews(current: ProxyLiveState | undefined, previous: ProxyLiveState | undefined, seconds: number, routing: LaneRouting): LaneView[] {
  if (!current) return [];
  const before = new Map(previous?.lanes.map((lane) => [lane.lane, lane]));
  return current.lanes.map((lane) => {
    const pool = current.pools.find((candidate) => candidate.name === routing.laneToPool[lane.lane]);
    const reqPerSec = rate(lane.totalRequests, before.get(lane.lane)?.totalRequests, seconds);
    const errorsPerSec = rate(lane.totalErrors, before.get(lane.lane)?.totalErrors, seconds);
    return {
      lane: lane.lane,
      pool: pool?.name ?? null,
      reqPerSec: round(reqPerSec),
      errorsPerSec: round(errorsPerSec),
      errorRate: reqPerSec > 0 ? round(errorsPerSec / reqPerSec, 4) : 0,
      p50Ms: round(lane.minute.p50Ms),
      p99Ms: round(lane.minute.p99Ms),
      totalRequests: lane.totalRequests,
      totalErrors: lane.totalErrors,
      queueDepth: pool?.queueDepth ?? null,
      queueTimeouts: pool?.queueTimeouts ?? null,
      queueFull: pool?.queueFull ?? null,
      clientShareRefused: pool?.clientShareRefused ?? null,
      topClients: topClientsOf(pool, lane.lane, routing),
      connections: current.connections.byClass[lane.lane] ?? { active: 0, idle: 0 },
      cloneSharing: lane.lane === CLONE_SHARING_LANE ? (current.cloneSharing ?? null) : null,
    };
  });
}

export function workerViews(fleet: FleetSnapshot, proxy: ProxyLiveState | undefined): WorkerView[] {
  const seenByProxy = new Map(proxy?.pools.flatMap((pool) => pool.workers.map((worker) => [worker.name, worker] as const)));
  return fleet.pools.flatMap((pool) =>
    pool.workers.map((worker) => {
      const proxied = seenByProxy.get(worker.name);
      return {
        name: worker.name,
        pool: worker.pool,
        index: worker.index,
        state: worker.state,
        stateSince: worker.stateSince,
        pid: worker.pid ?? null,
        restarts: worker.restarts,
        inflight: worker.inflight ?? null,
        served: worker.served ?? null,
        rssBytes: worker.rssBytes ?? null,
        uptimeSec: worker.uptimeSec ?? null,
        limits: worker.limits,
        pendingRecycle: worker.pendingRecycle ?? null,
        proxy: proxied ? { state: proxied.state, inflight: proxied.inflight, failures: proxied.failures } : null,
      };
    }),
  );
}

export function liveView(fleet: FleetSnapshot, lanes: LaneView[], proxy: ProxyLiveState | undefined, now: number): LiveView {
  const workers = workerViews(fleet, proxy);
  return {
    at: new Date(now).toISOString(),
    summary: {
      workersReady: workers.filter((worker) => worker.state === 'ready').length,
      workersTotal: workers.length,
      reqPerSec: round(lanes.reduce((sum, lane) => sum + lane.reqPerSec, 0)),
      errorsPerSec: round(lanes.reduce((sum, lane) => sum + lane.errorsPerSec, 0)),
      queueDepth: proxy?.pools.reduce((sum, pool) => sum + pool.queueDepth, 0) ?? 0,
      clientConnections: proxy?.connections.total ?? null,
      responseSpool: proxy?.responseSpool ?? null,
      proxyReachable: proxy !== undefined,
      history: fleet.history,
    },
    workers,
    lanes,
    pools: fleet.pools.map((pool) => ({ name: pool.name, maxUnavailable: pool.maxUnavailable })),
    proxies: fleet.proxies,
    hosts: fleet.hosts,
  };
}

export function sampleOf(view: LiveView, keys: SeriesKeys, proxy: ProxyLiveState | undefined, now: number): Sample {
  const lane = new Map(view.lanes.map((entry) => [entry.lane, entry]));
  const queue = new Map(proxy?.pools.map((pool) => [pool.name, pool.queueDepth]));
  const rss = new Map(view.workers.map((worker) => [worker.name, worker.rssBytes]));
  return {
    t: Math.round(now / 1000),
    rps: keys.lanes.map((name) => lane.get(name)?.reqPerSec ?? 0),
    p99: keys.lanes.map((name) => lane.get(name)?.p99Ms ?? 0),
    queue: keys.pools.map((name) => queue.get(name) ?? 0),
    rss: keys.workers.map((name) => rss.get(name) ?? null),
  };
}

export function eventView(event: FleetEvent, seq: number): EventView {
  return { seq, at: event.at.toISOString(), kind: event.kind, pool: event.pool, worker: event.worker, reason: event.reason, detail: event.detail };
}
