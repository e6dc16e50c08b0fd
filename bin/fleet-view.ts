import { nextRecycle } from '../supervisor/recycle-policy.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { plain, type Painter, type Style } from './paint.ts';
import { renderTable, type Cell, type Column } from './text-table.ts';
import { formatMb, formatSeconds } from './units.ts';

/** GET /api/fleet as JSON carries it. */
export type FleetSnapshot = ReturnType<Supervisor['snapshot']>;
type WorkerSnapshot = FleetSnapshot['pools'][number]['workers'][number];
type ProxySnapshot = FleetSnapshot['proxies'][number];

const COLUMNS: Column[] = [
  { header: 'worker' },
  { header: 'state' },
  { header: 'pid', align: 'right' },
  { header: 'restarts', align: 'right' },
  { header: 'in-flight', align: 'right' },
  { header: 'served', align: 'right' },
  { header: 'rss / limit', align: 'right' },
  { header: 'uptime', align: 'right' },
  { header: 'next recycle' },
];

const PROXY_COLUMNS: Column[] = [
  { header: 'proxy' },
  { header: 'address' },
  { header: 'up' },
  { header: 'connections', align: 'right' },
  { header: 'req/s', align: 'right' },
  { header: 'version' },
];

const STATE_STYLES: Record<string, Style> = { ready: 'green', draining: 'yellow', restarting: 'cyan', down: 'red' };
const NONE = { text: '-', style: 'dim' } as const;

const count = (value: number | undefined): Cell => (value === undefined ? NONE : String(value));

function stateCell(worker: WorkerSnapshot, now: number): Cell {
  const since = Date.parse(worker.stateSince);
  // How long a worker has been out of rotation is what an operator asks next.
  const age = worker.state !== 'ready' && Number.isFinite(since) ? ` ${formatSeconds((now - since) / 1000)}` : '';
  return { text: `${worker.state}${age}`, style: STATE_STYLES[worker.state] };
}

function rssCell(worker: WorkerSnapshot): Cell {
  if (worker.rssBytes === undefined) return NONE;
  const limit = worker.limits.maxRssBytes;
  if (!limit) return formatMb(worker.rssBytes);
  return { text: `${formatMb(worker.rssBytes)} / ${formatMb(limit)}`, style: worker.rssBytes >= 0.9 * limit ? 'yellow' : undefined };
}

/** What will recycle this worker, and how far off that is: by requests, age or RSS, whichever is nearest. */
export function nextRecycleText(worker: WorkerSnapshot): Cell {
  if (worker.pendingRecycle) return { text: `queued (${worker.pendingRecycle})`, style: 'yellow' };
  if (worker.state !== 'ready' || worker.served === undefined || worker.uptimeSec === undefined || worker.rssBytes === undefined) return NONE;
  const next = nextRecycle(worker.limits, { served: worker.served, uptimeSec: worker.uptimeSec, rssBytes: worker.rssBytes });
  if (!next) return { text: 'never', style: 'dim' };
  if (next.used >= 1) return { text: `due (${next.reason})`, style: 'yellow' };
  switch (next.reason) {
    case 'requests':
      return `${next.left} requests`;
    case 'age':
      return `in ${formatSeconds(next.left)}`;
    case 'rss':
      return `+${formatMb(next.left)} RSS`;
  }
}

function workerRow(worker: WorkerSnapshot, now: number): Cell[] {
  return [
    worker.name,
    stateCell(worker, now),
    count(worker.pid),
    String(worker.restarts),
    count(worker.inflight),
    count(worker.served),
    rssCell(worker),
    worker.uptimeSec === undefined ? NONE : formatSeconds(worker.uptimeSec),
    nextRecycleText(worker),
  ];
}

function proxyRow(proxy: ProxySnapshot, now: number): Cell[] {
  const seen = proxy.lastSeenAt ? Date.parse(proxy.lastSeenAt) : NaN;
  const down = Number.isFinite(seen) ? `down, seen ${formatSeconds(Math.max(0, now - seen) / 1000)} ago` : 'down';
  return [
    proxy.id,
    proxy.address ?? NONE,
    proxy.up ? { text: 'up', style: 'green' } : { text: proxy.error ? `${down} (${proxy.error})` : down, style: 'red' },
    proxy.clientConnections === null ? NONE : String(proxy.clientConnections),
    proxy.reqPerSec === null ? NONE : String(proxy.reqPerSec),
    proxy.version ?? NONE,
  ];
}

/** A site of several hosts: one line per host, a gone one in red with when it last reported. */
function hostLines(hosts: FleetSnapshot['hosts'], paint: Painter, now: number): string[] {
  if (hosts.length < 2) return [];
  return [
    'hosts:',
    ...hosts.map((host) => {
      const seen = host.lastSeenAt ? Date.parse(host.lastSeenAt) : NaN;
      const state = host.up
        ? paint(host.self ? 'up (this supervisor)' : 'up', 'green')
        : paint(Number.isFinite(seen) ? `gone: no report for ${formatSeconds(Math.max(0, now - seen) / 1000)}` : 'gone: never reported', 'red');
      const layout = host.sameLayout === false ? `, ${paint('its config lays the site out otherwise (hosts, pools): drains may not be counted alike', 'red')}` : '';
      return `  ${host.name} (${host.address}): ${state}, ${host.workers} workers${layout}`;
    }),
  ];
}

function poolLine(pool: FleetSnapshot['pools'][number]): string {
  const { maxRequests, maxAgeSec, maxRssMb, jitter } = pool.recycle;
  const limits = [maxRequests && `${maxRequests} requests`, maxAgeSec && formatSeconds(maxAgeSec), maxRssMb && `${maxRssMb} MB`].filter(Boolean);
  const sooner = jitter > 0 ? ` (up to ${Math.round(jitter * 100)}% sooner)` : '';
  const recycle = limits.length ? `recycle at ${limits.join(' / ')}${sooner}` : 'no recycle limits';
  return `  ${pool.name}: ${pool.workers.length} workers, maxUnavailable ${pool.maxUnavailable}, drain timeout ${pool.drainTimeoutSec}s, ${recycle}`;
}

function historyLine(history: FleetSnapshot['history'], paint: Painter): string {
  if (!history) return `history: ${paint('not open', 'yellow')}`;
  const parts = [history.backend, history.healthy ? paint('healthy', 'green') : paint(`unhealthy${history.lastError ? ` (${history.lastError})` : ''}`, 'red')];
  if (history.pending > 0) parts.push(`${history.pending} pending`);
  if (history.dropped > 0) parts.push(paint(`${history.dropped} dropped`, 'red'));
  return `history: ${parts.join(', ')}`;
}

/** `switchyard fleet`: one row per worker, then the pools, one row per proxy and the history store. */
export function fleetTable(fleet: FleetSnapshot, paint: Painter = plain, now = Date.now()): string {
  const workers = fleet.pools.flatMap((pool) => pool.workers);
  const channel = `fleet state ${fleet.redis ? 'over Redis and the control API' : 'over the control API'}`;
  const proxies = fleet.proxies.length
    ? [`proxies (${channel}):`, renderTable(PROXY_COLUMNS, fleet.proxies.map((proxy) => proxyRow(proxy, now)), paint)]
    : [`proxies: ${paint('none known', 'yellow')} (${channel})`];
  return [
    renderTable(COLUMNS, workers.map((worker) => workerRow(worker, now)), paint),
    'pools:',
    ...fleet.pools.map(poolLine),
    ...hostLines(fleet.hosts ?? [], paint, now),
    ...proxies,
    historyLine(fleet.history, paint),
    '',
  ].join('\n');
}
