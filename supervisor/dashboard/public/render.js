// Keeps the tables and the event log in step with the live state. Rows are keyed and updated in
// place, so a button under the pointer is never replaced between press and release.
import * as fmt from './format.js';
import { runAction } from './actions.js';

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'data') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function set(node, text, title) {
  if (node.textContent !== text) node.textContent = text;
  if (title !== undefined && node.title !== title) node.title = title;
}

function actionButton(action, target, label, style = 'ghost') {
  const button = el('button', { class: `small ${style}`, data: { action, target } }, label);
  button.addEventListener('click', () => runAction(action, target));
  return button;
}

export class WorkersTable {
  constructor(table) {
    this.table = table;
    this.rows = new Map();
  }

  build(workers, pools) {
    this.table.querySelectorAll('tbody').forEach((body) => body.remove());
    this.rows.clear();
    for (const pool of pools) {
      const members = workers.filter((worker) => worker.pool === pool.name);
      if (members.length === 0) continue;
      const body = el('tbody', { data: { pool: pool.name } });
      const head = el(
        'tr',
        { class: 'pool-row' },
        el('th', { colspan: '8' }, el('span', { class: 'pool-name' }, pool.name), el('span', { class: 'muted small' }, ` ${members.length} workers · maxUnavailable ${pool.maxUnavailable}`)),
        el('th', { class: 'actions' }, actionButton('roll', pool.name, 'Roll pool')),
      );
      body.append(head);
      for (const worker of members) body.append(this.row(worker));
      this.table.append(body);
    }
  }

  row(worker) {
    const cells = {
      name: el('td', { class: 'worker-name' }),
      pid: el('td', { class: 'mono' }),
      state: el('td'),
      inflight: el('td', { class: 'num', data: { field: 'inflight' } }),
      served: el('td', { class: 'num', data: { field: 'served' } }),
      rss: el('td'),
      uptime: el('td', { class: 'num' }),
      next: el('td', { class: 'next-recycle' }),
      actions: el('td', { class: 'actions' }),
    };
    cells.name.append(el('strong', {}, worker.name));
    cells.badge = el('span', { class: 'badge', data: { field: 'state' } });
    cells.proxyNote = el('span', { class: 'muted small proxy-note' });
    cells.state.append(cells.badge, cells.proxyNote);
    cells.rssBar = el('span', { class: 'bar' }, el('span', { class: 'fill' }));
    cells.rssText = el('span', { class: 'small' });
    cells.rss.append(el('div', { class: 'rss-cell' }, cells.rssBar, cells.rssText));
    cells.drain = actionButton('drain', worker.name, 'Drain');
    cells.ready = actionButton('ready', worker.name, 'Undrain');
    cells.recycle = actionButton('recycle', worker.name, 'Recycle', 'warn');
    cells.actions.append(cells.drain, cells.ready, cells.recycle);
    const row = el('tr', { data: { worker: worker.name } }, cells.name, cells.pid, cells.state, cells.inflight, cells.served, cells.rss, cells.uptime, cells.next, cells.actions);
    this.rows.set(worker.name, { row, cells });
    return row;
  }

  update(workers, pools) {
    if (workers.length !== this.rows.size || workers.some((worker) => !this.rows.has(worker.name))) this.build(workers, pools);
    for (const worker of workers) {
      const { row, cells } = this.rows.get(worker.name);
      row.dataset.state = worker.state;
      set(cells.pid, worker.pid == null ? '–' : String(worker.pid), `restarts: ${worker.restarts}`);
      set(cells.badge, worker.state, `since ${fmt.clock(worker.stateSince)}`);
      cells.badge.className = `badge state-${worker.state}`;
      const proxyState = worker.proxy && worker.proxy.state !== (worker.state === 'restarting' ? 'draining' : worker.state) ? `proxy: ${worker.proxy.state}` : '';
      set(cells.proxyNote, proxyState);
      set(cells.inflight, worker.inflight == null ? '–' : String(worker.inflight));
      cells.inflight.classList.toggle('hot', (worker.inflight ?? 0) > 0);
      set(cells.served, fmt.count(worker.served));
      const limit = worker.limits.maxRssBytes;
      const ratio = limit > 0 && worker.rssBytes != null ? Math.min(1, worker.rssBytes / limit) : 0;
      cells.rssBar.firstChild.style.width = `${(ratio * 100).toFixed(1)}%`;
      cells.rssBar.classList.toggle('high', ratio > 0.85);
      set(cells.rssText, `${fmt.bytes(worker.rssBytes)} / ${limit > 0 ? fmt.bytes(limit) : '∞'}`);
      set(cells.uptime, fmt.duration(worker.uptimeSec));
      const next = fmt.nextRecycle(worker);
      set(cells.next, next.text);
      cells.next.classList.toggle('urgent', next.urgent);
      const busy = worker.state === 'restarting' || worker.state === 'down' || Boolean(worker.pendingRecycle);
      cells.drain.hidden = worker.state === 'draining';
      cells.ready.hidden = worker.state !== 'draining' || Boolean(worker.pendingRecycle);
      cells.drain.disabled = worker.state !== 'ready';
      cells.recycle.disabled = busy;
    }
  }
}

const LANE_COLUMNS = ['lane', 'pool', 'rps', 'p50', 'p99', 'errors', 'queue', 'timeouts', 'refused', 'clients', 'sharing', 'active', 'idle'];
const TEXT_COLUMNS = new Set(['lane', 'pool', 'clients', 'sharing']);

/** Clone sharing on the clone lane's row: requests by how they were answered, and the spool's disk use. */
function sharingCell(cell, sharing) {
  if (!sharing) return set(cell, '–');
  const { miss, coalesced, hit, bypass } = sharing.requests;
  const text = `${fmt.count(miss)} miss · ${fmt.count(coalesced)} coalesced · ${fmt.count(hit)} hit · ${fmt.count(bypass)} bypass · ${fmt.bytes(sharing.diskBytes)}`;
  set(cell, text, `clone and bot lanes since the proxy started; spool: ${fmt.bytes(sharing.diskBytes)} on disk, ${fmt.count(sharing.entries)} answers, ${fmt.count(sharing.waiting)} requests waiting for one to begin`);
}

/** One top client of a lane: its fair-share key (network text: only ever set as text) and its part. */
function topClient({ client, holding, queued, holdsAll }) {
  const parts = [holding > 0 ? `${holding} held` : '', queued > 0 ? `${queued} queued` : ''].filter(Boolean).join(' · ');
  const title = `${client}: holding ${holding} worker slot${holding === 1 ? '' : 's'}${holdsAll ? ' (all of the pool)' : ''}, ${queued} queued`;
  const classes = ['top-client', holdsAll ? 'holds-all' : '', queued > 0 ? 'waiting' : ''].filter(Boolean).join(' ');
  return el('div', { class: classes, title }, el('span', { class: 'mono' }, client), ' ', el('span', { class: 'small share' }, parts));
}

/** Rebuilds the top-clients cell only when who or how much changed. */
function renderTopClients(cell, clients) {
  const key = JSON.stringify(clients);
  if (cell.dataset.key === key) return;
  cell.dataset.key = key;
  if (clients.length === 0) cell.replaceChildren('–');
  else cell.replaceChildren(...clients.map(topClient));
}

export class LanesTable {
  constructor(body) {
    this.body = body;
    this.rows = new Map();
  }

  row(lane) {
    const cells = Object.fromEntries(LANE_COLUMNS.map((field) => [field, el('td', { class: TEXT_COLUMNS.has(field) ? '' : 'num', data: { field } })]));
    cells.lane.classList.add('lane-name');
    cells.clients.classList.add('top-clients');
    const row = el('tr', { data: { lane: lane.lane } }, ...Object.values(cells));
    this.body.append(row);
    const entry = { row, cells };
    this.rows.set(lane.lane, entry);
    return entry;
  }

  update(lanes) {
    for (const lane of lanes) {
      const c = (this.rows.get(lane.lane) ?? this.row(lane)).cells;
      set(c.lane, lane.lane);
      set(c.pool, lane.pool ?? '(static)');
      set(c.rps, fmt.rate(lane.reqPerSec));
      set(c.p50, lane.reqPerSec > 0 || lane.p50Ms > 0 ? fmt.ms(lane.p50Ms) : '–');
      set(c.p99, lane.reqPerSec > 0 || lane.p99Ms > 0 ? fmt.ms(lane.p99Ms) : '–');
      set(c.errors, `${fmt.percent(lane.errorRate)}`, `${fmt.count(lane.totalErrors)} errors of ${fmt.count(lane.totalRequests)} requests since the proxy started`);
      c.errors.classList.toggle('bad', lane.errorRate > 0.01);
      set(c.queue, lane.queueDepth == null ? '–' : String(lane.queueDepth));
      c.queue.classList.toggle('hot', (lane.queueDepth ?? 0) > 0);
      set(c.timeouts, lane.queueTimeouts == null ? '–' : fmt.count(lane.queueTimeouts), lane.queueFull == null ? undefined : `queue full: ${fmt.count(lane.queueFull)}`);
      set(c.refused, lane.clientShareRefused == null ? '–' : fmt.count(lane.clientShareRefused));
      renderTopClients(c.clients, lane.topClients ?? []);
      sharingCell(c.sharing, lane.cloneSharing);
      set(c.active, fmt.count(lane.connections.active));
      set(c.idle, fmt.count(lane.connections.idle));
    }
  }
}

/** Table rows keyed by an id, each cell a `td` named by its field; rows of ids no longer listed are removed. */
class KeyedRows {
  constructor(body, columns, numbers, keyName) {
    this.body = body;
    this.columns = columns;
    this.numbers = numbers;
    this.keyName = keyName;
    this.rows = new Map();
  }

  entry(id) {
    const existing = this.rows.get(id);
    if (existing) return existing;
    const cells = Object.fromEntries(this.columns.map((field) => [field, el('td', { class: this.numbers.has(field) ? 'num' : '', data: { field } })]));
    cells[this.columns[0]].classList.add('mono');
    cells.badge = el('span', { class: 'badge' });
    cells.state.append(cells.badge);
    const row = el('tr', { data: { [this.keyName]: id } }, ...this.columns.map((field) => cells[field]));
    this.body.append(row);
    const entry = { row, cells };
    this.rows.set(id, entry);
    return entry;
  }

  keepOnly(ids) {
    const listed = new Set(ids);
    for (const [id, { row }] of this.rows) {
      if (listed.has(id)) continue;
      row.remove();
      this.rows.delete(id);
    }
  }
}

/** An up/down badge with its hover text. */
function upBadge(badge, up, upText, downText, title) {
  set(badge, up ? upText : downText, title);
  badge.className = `badge ${up ? 'state-ready' : 'state-down'}`;
}

/** One row per proxy, keyed by id; a proxy no longer listed loses its row. Every value is set as text. */
export class ProxiesTable {
  constructor(body) {
    this.rows = new KeyedRows(body, ['id', 'address', 'state', 'connections', 'rps', 'version', 'started'], new Set(['connections', 'rps']), 'proxy');
  }

  update(proxies) {
    this.rows.keepOnly(proxies.map((proxy) => proxy.id));
    for (const proxy of proxies) {
      const { row, cells } = this.rows.entry(proxy.id);
      row.dataset.up = String(proxy.up);
      set(cells.id, proxy.id, `control API ${proxy.control}${proxy.pid ? ` · pid ${proxy.pid}` : ''}`);
      set(cells.address, proxy.address ?? '–');
      const seen = proxy.lastSeenAt ? `last seen ${fmt.clock(proxy.lastSeenAt)}` : 'not seen yet';
      upBadge(cells.badge, proxy.up, 'up', 'down', proxy.error ? `${seen} · ${proxy.error}` : seen);
      set(cells.connections, fmt.count(proxy.clientConnections));
      set(cells.rps, fmt.rate(proxy.reqPerSec));
      set(cells.version, proxy.version ?? '–');
      set(cells.started, proxy.startedAt ? fmt.clock(proxy.startedAt) : '–', proxy.startedAt ?? '');
    }
  }
}

/** A site of several hosts: one row per host of the config; a gone host (its supervisor silent) is marked. The card shows only on such a site. */
export class HostsTable {
  constructor(card) {
    this.card = card;
    this.rows = new KeyedRows(card.querySelector('tbody'), ['host', 'address', 'state', 'workers', 'report'], new Set(['workers']), 'host');
  }

  update(hosts) {
    this.card.hidden = hosts.length < 2;
    this.rows.keepOnly(hosts.map((host) => host.name));
    for (const host of hosts) {
      const { row, cells } = this.rows.entry(host.name);
      row.dataset.up = String(host.up);
      set(cells.host, host.self ? `${host.name} (this one)` : host.name, host.supervisor ? `supervisor ${host.supervisor}` : '');
      set(cells.address, host.address);
      upBadge(cells.badge, host.up, 'up', 'gone', host.up ? '' : 'its supervisor stopped reporting: the proxies take its workers out by their health checks');
      set(cells.workers, fmt.count(host.workers));
      set(cells.report, host.lastSeenAt ? fmt.clock(host.lastSeenAt) : 'never', host.lastSeenAt ?? '');
    }
  }
}

const EVENT_LIMIT = 200;

const isLines = (value) => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** An event's detail: its values on one line, and lists of lines (a reload's changes) one line each under their key. */
function eventDetail(detail = {}) {
  const entries = Object.entries(detail);
  const values = entries
    .filter(([, value]) => !isLines(value))
    .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : value}`)
    .join(' · ');
  const node = el('div', { class: 'muted small detail' });
  if (values) node.append(el('div', {}, values));
  for (const [key, lines] of entries.filter(([, value]) => isLines(value) && value.length > 0)) {
    const heading = key.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase(); // notApplied: "not applied"
    node.append(el('div', { class: 'detail-key' }, heading), ...lines.map((line) => el('div', { class: 'detail-line' }, line)));
  }
  return node;
}

export class EventLog {
  constructor(list) {
    this.list = list;
  }

  reset(events) {
    this.list.replaceChildren();
    this.add(events, false);
  }

  add(events, fresh = true) {
    for (const event of events) {
      const who = [event.pool, event.worker].filter(Boolean);
      const item = el(
        'li',
        { class: fresh ? 'fresh' : '', data: { kind: event.kind, worker: event.worker ?? '' } },
        el('time', { datetime: event.at, title: event.at }, fmt.clock(event.at)),
        el('span', { class: `badge kind-${event.kind}` }, event.kind),
        el('span', { class: 'who' }, event.worker ?? event.pool ?? 'fleet'),
        el('span', { class: 'reason' }, event.reason ?? ''),
        eventDetail(event.detail),
      );
      if (who.length === 0) item.querySelector('.who').classList.add('muted');
      this.list.prepend(item);
    }
    while (this.list.children.length > EVENT_LIMIT) this.list.lastElementChild.remove();
  }
}

export function renderSummary(summary) {
  const kpi = (name) => document.querySelector(`[data-kpi="${name}"]`);
  set(kpi('workers'), `${summary.workersReady} / ${summary.workersTotal}`);
  kpi('workers').classList.toggle('bad', summary.workersReady < summary.workersTotal);
  set(kpi('rps'), fmt.rate(summary.reqPerSec));
  set(kpi('errors'), fmt.rate(summary.errorsPerSec));
  kpi('errors').classList.toggle('bad', summary.errorsPerSec > 0);
  set(kpi('queue'), String(summary.queueDepth));
  kpi('queue').classList.toggle('warn', summary.queueDepth > 0);
  set(kpi('connections'), summary.clientConnections == null ? '–' : fmt.count(summary.clientConnections));
  const spool = summary.responseSpool;
  set(kpi('spool'), spool ? fmt.bytes(spool.diskBytes) : '–', spool ? `${fmt.bytes(spool.memoryBytes)} in memory · ${fmt.count(spool.clients)} clients` : 'proxy unreachable or without response spooling');
  kpi('spool').classList.toggle('warn', (spool?.diskBytes ?? 0) > 0);
  set(kpi('proxy'), summary.proxyReachable ? 'up' : 'unreachable');
  kpi('proxy').classList.toggle('bad', !summary.proxyReachable);
  const history = summary.history;
  set(kpi('history'), history ? `${history.backend}${history.healthy ? '' : ' (down)'}` : 'off', history?.lastError ?? '');
  kpi('history').classList.toggle('warn', Boolean(history && !history.healthy));
}
