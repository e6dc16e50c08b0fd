// The command line's table, progress lines and deadlines, from fixed fleet snapshots and events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fleetTable, nextRecycleText, type FleetSnapshot } from '../../bin/fleet-view.ts';
import { outcomeOf, type EventJson } from '../../bin/operation-outcome.ts';
import { ansi, painterFor } from '../../bin/paint.ts';
import { renderTable } from '../../bin/text-table.ts';
import { formatMs, formatSeconds } from '../../bin/units.ts';
import { thresholdsFor } from '../../supervisor/recycle-policy.ts';

const MB = 1024 * 1024;
const NOW = Date.parse('2026-12-06T10:00:00Z');
const recycle = { maxRequests: 1000, maxAgeSec: 0, maxRssMb: 512, jitter: 0 };
type Worker = FleetSnapshot['pools'][number]['workers'][number];

function worker(name: string, changes: Partial<Worker> = {}): Worker {
  return {
    name,
    pool: 'web',
    index: 0,
    address: '127.0.0.1:9100',
    state: 'ready',
    stateSince: new Date(NOW - 90_000).toISOString(),
    pmId: 1,
    pid: 4242,
    restarts: 0,
    inflight: 1,
    served: 600,
    rssBytes: 128 * MB,
    heapUsedBytes: 20 * MB,
    uptimeSec: 3725,
    limits: thresholdsFor(recycle, 0),
    retiring: undefined,
    pendingRecycle: undefined,
    ...changes,
  } as Worker;
}

function snapshot(workers: Worker[]): FleetSnapshot {
  return {
    pools: [{ name: 'web', maxUnavailable: 1, drainTimeoutSec: 60, recycle, workers }],
    proxies: [
      { id: 'a:8080', host: 'a', address: '10.0.0.1:8080', control: 'http://127.0.0.1:8081', version: '0.1.0+abc1234', startedAt: '', pid: 10, up: true, lastSeenAt: new Date(NOW - 1000).toISOString(), clientConnections: 12, reqPerSec: 3.5 },
      { id: 'b:8080', host: 'b', address: '10.0.0.2:8080', control: 'http://10.0.0.2:8081', version: '0.1.0+abc1234', startedAt: '', pid: 11, up: false, lastSeenAt: new Date(NOW - 75_000).toISOString(), clientConnections: null, reqPerSec: null, error: 'no answer in time' },
    ],
    redis: false,
    history: { backend: 'postgres', healthy: false, lastError: 'connection refused', pending: 3, dropped: 0 },
  } as unknown as FleetSnapshot;
}

test('the table: aligned columns, a row per worker, pools, proxies and the history store below', () => {
  const text = fleetTable(snapshot([worker('web-0'), worker('web-1', { state: 'draining', stateSince: new Date(NOW - 12_000).toISOString(), pid: 17, inflight: 12 })]), undefined, NOW);
  const lines = text.trimEnd().split('\n');
  const proxiesAt = lines.indexOf('proxies (fleet state over the control API):');
  for (const table of [lines.slice(0, proxiesAt), lines.slice(proxiesAt)]) {
    const tableLines = table.filter((line) => /^[┌│├└]/.test(line));
    assert.equal(new Set(tableLines.map((line) => line.length)).size, 1, `every line of a table is as wide:\n${text}`);
  }
  const web0 = lines.find((line) => line.includes(' web-0 '))!;
  assert.match(web0, /│ ready +│ +4242 │ +0 │ +1 │ +600 │ 128 MB \/ 512 MB │ 1h 02m │ 400 requests +│/);
  const web1 = lines.find((line) => line.includes(' web-1 '))!;
  assert.match(web1, /│ draining 12s +│/, 'how long a worker has been out of rotation');
  assert.match(web1, /│ - +│$/, 'no next recycle while draining');
  assert.ok(lines.includes('  web: 2 workers, maxUnavailable 1, drain timeout 60s, recycle at 1000 requests / 512 MB'), text);
  assert.ok(lines.includes('proxies (fleet state over the control API):'), text);
  const a = lines.find((line) => line.includes(' a:8080 '))!;
  assert.match(a, /│ a:8080 │ 10\.0\.0\.1:8080 │ up +│ +12 │ +3\.5 │ 0\.1\.0\+abc1234 │/);
  const b = lines.find((line) => line.includes(' b:8080 '))!;
  assert.match(b, /│ down, seen 1m 15s ago \(no answer in time\) │ +- │ +- │/, 'a down proxy: since when, and why');
  assert.ok(lines.includes('history: postgres, unhealthy (connection refused), 3 pending'));
});

test('no proxy known says so', () => {
  const fleet = { ...snapshot([worker('web-0')]), proxies: [] } as FleetSnapshot;
  assert.ok(fleetTable(fleet, undefined, NOW).split('\n').includes('proxies: none known (fleet state over the control API)'));
});

test('colour codes never count toward a column width', () => {
  const columns = [{ header: 'a' }, { header: 'b', align: 'right' as const }];
  const rows = [[{ text: 'ready', style: 'green' as const }, '1'], ['down', '22']];
  const coloured = renderTable(columns, rows, ansi).replace(/\x1b\[\d+m/g, '');
  assert.equal(coloured, renderTable(columns, rows));
  assert.equal(painterFor({ isTTY: true }, {}), ansi);
  assert.notEqual(painterFor({ isTTY: true }, { NO_COLOR: '1' }), ansi, 'NO_COLOR turns colour off');
  assert.notEqual(painterFor({ isTTY: false }, {}), ansi, 'a pipe gets no colour');
});

test('next recycle: the nearest limit, due, queued, or never', () => {
  const text = (changes: Partial<Worker>) => {
    const cell = nextRecycleText(worker('web-0', changes));
    return typeof cell === 'string' ? cell : cell.text;
  };
  assert.equal(text({ served: 900 }), '100 requests');
  assert.equal(text({ served: 10, rssBytes: 500 * MB }), '+12 MB RSS');
  assert.equal(text({ served: 1000 }), 'due (requests)');
  assert.equal(text({ pendingRecycle: 'manual' }), 'queued (manual)');
  assert.equal(text({ limits: thresholdsFor({ maxRequests: 0, maxAgeSec: 3600, maxRssMb: 0, jitter: 0 }, 0), uptimeSec: 600 }), 'in 50m 00s');
  assert.equal(text({ limits: thresholdsFor({ maxRequests: 0, maxAgeSec: 0, maxRssMb: 0, jitter: 0 }, 0) }), 'never');
  assert.equal(text({ served: undefined }), '-', 'no health answer yet');
});

test('progress lines: how each operation ends, from the supervisor events', () => {
  const event = (kind: string, detail: Record<string, unknown> = {}, reason?: string) => ({ id: 1, at: '', kind, pool: 'web', worker: 'web-0', reason, detail }) as unknown as EventJson;
  assert.deepEqual(outcomeOf('recycle', event('recycle', { drainMs: 1200, totalMs: 3000 })), { ok: true, text: 'drained in 1.2 s  restarted  healthy (1.8 s)' });
  assert.deepEqual(outcomeOf('recycle', event('recycle', { drainMs: 60_000, totalMs: 61_000, drainTimedOut: true })), {
    ok: false,
    text: 'drain timed out after 1m 00s  restarted  healthy (1.0 s)',
  });
  assert.equal(outcomeOf('recycle', event('drain', { drained: true, drainMs: 5 })), undefined, 'a step on the way');
  assert.deepEqual(outcomeOf('recycle', event('crash', {}, 'exit code 1')), { ok: false, text: 'crashed: exit code 1' });
  assert.deepEqual(outcomeOf('drain', event('drain', { drained: true, drainMs: 340 })), { ok: true, text: 'drained in 340 ms' });
  assert.equal(outcomeOf('drain', event('drain', { drained: false, drainMs: 60_000 }))?.ok, false);
  assert.equal(outcomeOf('drain', event('drain')), undefined, 'the drain beginning');
  assert.equal(outcomeOf('drain', event('ready', {}, 'manual'))?.ok, false, 'put back before it was idle');
});

test('durations read as people write them', () => {
  assert.deepEqual([formatMs(412), formatMs(1940), formatMs(125_000)], ['412 ms', '1.9 s', '2m 05s']);
  assert.deepEqual([formatSeconds(42), formatSeconds(12_000), formatSeconds(367_200)], ['42s', '3h 20m', '4d 06h']);
});

test('a site of several hosts: one line per host, a gone one with how long it has been silent; one host: no such lines', () => {
  const site = {
    ...snapshot([worker('web-a-0'), worker('web-b-0', { state: 'down' })]),
    hosts: [
      { name: 'a', address: '10.0.0.1', self: true, up: true, lastSeenAt: new Date(NOW).toISOString(), supervisor: 'http://10.0.0.1:8090', workers: 1 },
      { name: 'b', address: '10.0.0.2', self: false, up: false, lastSeenAt: new Date(NOW - 42_000).toISOString(), supervisor: 'http://10.0.0.2:8090', workers: 1 },
    ],
  } as unknown as FleetSnapshot;
  const lines = fleetTable(site, undefined, NOW).split('\n');
  const at = lines.indexOf('hosts:');
  assert.ok(at > 0, lines.join('\n'));
  assert.deepEqual(lines.slice(at + 1, at + 3), ['  a (10.0.0.1): up (this supervisor), 1 workers', `  b (10.0.0.2): gone: no report for ${formatSeconds(42)}, 1 workers`]);
  const otherLayout = { ...site, hosts: site.hosts.map((host) => ({ ...host, sameLayout: host.self })) } as FleetSnapshot;
  assert.match(fleetTable(otherLayout, undefined, NOW), /b \(10\.0\.0\.2\): .*its config lays the site out otherwise/);
  const single = { ...site, hosts: site.hosts.slice(0, 1) } as FleetSnapshot;
  assert.ok(!fleetTable(single, undefined, NOW).split('\n').includes('hosts:'));
});
