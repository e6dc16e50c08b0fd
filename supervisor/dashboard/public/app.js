// The dashboard page: follows /ws (a snapshot, then updates), reconnects on its own and says when
// what it shows is stale; charts the last 15 minutes live and older ranges from /api/lanes/history.
import { Chart, formats } from './charts.js';
import { post, toast } from './actions.js';
import { EventLog, HostsTable, LanesTable, ProxiesTable, WorkersTable, renderSummary } from './render.js';

const STALE_AFTER_MS = 4000;
const RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400 };

const workers = new WorkersTable(document.getElementById('workers'));
const lanes = new LanesTable(document.querySelector('#lanes tbody'));
const proxies = new ProxiesTable(document.querySelector('#proxies tbody'));
const hosts = new HostsTable(document.querySelector('#hosts'));
const events = new EventLog(document.getElementById('events'));

const state = { keys: null, windowSec: 900, series: null, lastMessageAt: 0, lastLiveAt: null, connected: false, range: 'live' };
let charts = [];

function emptySeries(keys) {
  return { t: [], rps: keys.lanes.map(() => []), p99: keys.lanes.map(() => []), queue: keys.pools.map(() => []), rss: keys.workers.map(() => []) };
}

function addSamples(samples) {
  const s = state.series;
  for (const sample of samples) {
    s.t.push(sample.t);
    sample.rps.forEach((v, i) => s.rps[i].push(v));
    sample.p99.forEach((v, i) => s.p99[i].push(v));
    sample.queue.forEach((v, i) => s.queue[i].push(v));
    sample.rss.forEach((v, i) => s.rss[i].push(v == null ? null : v / 1048576));
  }
  const cutoff = (s.t.at(-1) ?? 0) - state.windowSec;
  let drop = 0;
  while (drop < s.t.length && s.t[drop] < cutoff) drop++;
  if (drop > 0) for (const column of [s.t, ...s.rps, ...s.p99, ...s.queue, ...s.rss]) column.splice(0, drop);
}

function makeCharts(queueNames, queueCaption) {
  for (const chart of charts) chart.destroy();
  document.getElementById('queue-caption').textContent = queueCaption;
  charts = [
    new Chart(document.getElementById('chart-rps'), state.keys.lanes, formats.plain),
    new Chart(document.getElementById('chart-p99'), state.keys.lanes, formats.ms),
    new Chart(document.getElementById('chart-queue'), queueNames, formats.plain),
    new Chart(document.getElementById('chart-rss'), state.keys.workers, formats.mb),
  ];
}

function drawLive() {
  const s = state.series;
  charts[0].setData([s.t, ...s.rps]);
  charts[1].setData([s.t, ...s.p99]);
  charts[2].setData([s.t, ...s.queue]);
  charts[3].setData([s.t, ...s.rss]);
}

/** Per-minute lane history: req/s, p99 and the queue's peak per lane; RSS stays live (it has no history). */
async function drawHistory(range) {
  const since = new Date(Date.now() - RANGES[range] * 1000).toISOString();
  const response = await fetch(`/api/lanes/history?since=${encodeURIComponent(since)}`, { credentials: 'same-origin' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    toast(`history: ${body.error ?? `HTTP ${response.status}`}`, 'error');
    return;
  }
  const minutes = [...new Set(body.minutes.map((m) => Date.parse(m.minute) / 1000))].sort((a, b) => a - b);
  const index = new Map(minutes.map((t, i) => [t, i]));
  const column = () => state.keys.lanes.map(() => minutes.map(() => null));
  const [rps, p99, queue] = [column(), column(), column()];
  for (const m of body.minutes) {
    const lane = state.keys.lanes.indexOf(m.lane);
    const i = index.get(Date.parse(m.minute) / 1000);
    if (lane < 0) continue;
    rps[lane][i] = m.requests / 60;
    p99[lane][i] = m.p99Ms;
    queue[lane][i] = m.queuePeak;
  }
  if (state.range !== range) return;
  charts[0].setData([minutes, ...rps]);
  charts[1].setData([minutes, ...p99]);
  charts[2].setData([minutes, ...queue]);
}

function selectRange(range) {
  state.range = range;
  for (const button of document.querySelectorAll('#range button')) button.classList.toggle('active', button.dataset.range === range);
  if (!state.keys) return;
  if (range === 'live') {
    makeCharts(state.keys.pools, 'Queue depth by pool');
    drawLive();
  } else {
    makeCharts(state.keys.lanes, 'Queue peak by lane (per minute)');
    charts[3].setData([state.series.t, ...state.series.rss]);
    void drawHistory(range);
  }
}

function applyLive(live) {
  state.lastLiveAt = live.at;
  renderSummary(live.summary);
  workers.update(live.workers, live.pools);
  lanes.update(live.lanes);
  proxies.update(live.proxies ?? []);
  hosts.update(live.hosts ?? []);
}

function onMessage(message) {
  const wasStale = document.body.classList.contains('is-stale');
  state.lastMessageAt = Date.now();
  if (wasStale) showConnection();
  if (message.type === 'snapshot') {
    const keysChanged = JSON.stringify(message.keys) !== JSON.stringify(state.keys);
    state.keys = message.keys;
    state.windowSec = message.windowMs / 1000;
    state.series = emptySeries(message.keys);
    addSamples(message.samples);
    events.reset(message.events);
    applyLive(message.live);
    if (keysChanged || charts.length === 0) selectRange(state.range);
    else if (state.range === 'live') drawLive();
    return;
  }
  addSamples(message.samples);
  events.add(message.events);
  applyLive(message.live);
  if (state.range === 'live') drawLive();
  else charts[3].setData([state.series.t, ...state.series.rss]);
}

function showConnection() {
  const stale = !state.connected || Date.now() - state.lastMessageAt > STALE_AFTER_MS;
  const banner = document.getElementById('stale');
  const badge = document.getElementById('live-badge');
  banner.hidden = !stale;
  document.body.classList.toggle('is-stale', stale);
  badge.textContent = stale ? 'stale' : 'live';
  badge.classList.toggle('stale', stale);
  if (stale) {
    const asOf = state.lastLiveAt ? ` Showing data from ${new Date(state.lastLiveAt).toLocaleTimeString('en-GB', { hour12: false })}.` : '';
    document.getElementById('stale-text').textContent = `${state.connected ? 'No updates from the supervisor.' : 'Disconnected from the supervisor, reconnecting…'}${asOf}`;
  }
}

let retryMs = 500;

async function connect() {
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  socket.addEventListener('open', () => {
    state.connected = true;
    retryMs = 500;
  });
  socket.addEventListener('message', (event) => onMessage(JSON.parse(event.data)));
  socket.addEventListener('close', async () => {
    state.connected = false;
    showConnection();
    // A refused upgrade looks like any other close: ask the API whether the session is still good.
    const check = await fetch('/api/fleet', { credentials: 'same-origin' }).catch(() => undefined);
    if (check?.status === 401) {
      location.href = '/login';
      return;
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  });
}

document.getElementById('range').addEventListener('click', (event) => {
  const range = event.target.closest('button')?.dataset.range;
  if (range) selectRange(range);
});

document.getElementById('logout').addEventListener('click', async () => {
  await post('/logout').catch(() => undefined);
  location.href = '/login';
});

setInterval(showConnection, 1000);
showConnection();
connect();
