import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ControlServer } from '../../../proxy/control.ts';
import type { SwitchyardProxy } from '../../../proxy/server.ts';
import { Access } from '../../../supervisor/dashboard/access.ts';
import { budgetKey, FailureLimiter } from '../../../supervisor/dashboard/rate-limit.ts';
import { SessionStore } from '../../../supervisor/dashboard/sessions.ts';
import type { HistoryStore, LaneMinute } from '../../../supervisor/history/types.ts';
import { topClientsOf } from '../../../supervisor/dashboard/views.ts';
import { HARNESS_TOKEN, login, startDashboardHarness, type DashboardHarness } from '../../helpers/dashboard-harness.ts';
import { request, waitFor } from '../../helpers/http.ts';

const bearer = { authorization: `Bearer ${HARNESS_TOKEN}` };

const PROTECTED: Array<[string, string]> = [
  ['GET', '/'],
  ['GET', '/api/fleet'],
  ['GET', '/api/events'],
  ['GET', '/api/dashboard'],
  ['GET', '/api/lanes/history?since=2020-01-01T00:00:00Z'],
  ['GET', '/metrics'],
  ['GET', '/assets/app.js'],
  ['GET', '/assets/vendor/uPlot.js'],
  ['GET', '/nowhere'],
  ['POST', '/api/workers/web-0/drain'],
  ['POST', '/api/workers/web-0/ready'],
  ['POST', '/api/workers/web-0/recycle'],
  ['POST', '/api/pools/web/roll'],
  ['POST', '/logout'],
];

describe('dashboard HTTP API: routes and auth', () => {
  let h: DashboardHarness;
  const call = (method: string, route: string, headers: Record<string, string> = bearer) => fetch(`${h.url}${route}`, { method, headers, redirect: 'manual' });

  before(async () => {
    h = await startDashboardHarness({ access: { limiter: new FailureLimiter(1000, 1000) } });
  });
  after(async () => {
    await h?.close();
  });

  test('public: health, the login page and its stylesheet; security headers everywhere', async () => {
    assert.equal((await call('GET', '/healthz', {})).status, 200);
    const loginPage = await call('GET', '/login', {});
    assert.equal(loginPage.status, 200);
    assert.match(await loginPage.text(), /<form method="post" action="\/login">/);
    assert.equal((await call('GET', '/assets/style.css', {})).status, 200);
    assert.match(loginPage.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(loginPage.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    assert.equal(loginPage.headers.get('x-frame-options'), 'DENY');
    assert.equal(loginPage.headers.get('x-content-type-options'), 'nosniff');
  });

  test('every other route: 401 without or with a wrong token, a browser is sent to the login page', async () => {
    for (const [method, route] of PROTECTED) {
      const anonymous = await call(method, route, {});
      assert.equal(anonymous.status, 401, `${method} ${route}`);
      assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await call(method, route, { authorization: 'Bearer wrong' })).status, 401, `${method} ${route} with a wrong token`);
      assert.equal((await call(method, route, { cookie: 'switchyard_session=forged' })).status, 401, `${method} ${route} with a forged session`);
      for (const authorization of ['', 'x', 'Bearer', 'Bearer ', 'Basic Og==']) {
        assert.equal((await call(method, route, { authorization })).status, 401, `${method} ${route} with Authorization: ${authorization}`);
      }
    }
    const browser = await call('GET', '/', { accept: 'text/html' });
    assert.equal(browser.status, 303);
    assert.equal(browser.headers.get('location'), '/login');
    const sneaky = await call('GET', '/api/fleet?/login', {});
    assert.equal(sneaky.status, 401, 'a public route name in the query string does not open a route');
  });

  test('the page, its scripts and uPlot are served to an authenticated client', async () => {
    const page = await call('GET', '/');
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/assets\/app\.js" type="module">/);
    for (const asset of ['/assets/app.js', '/assets/render.js', '/assets/charts.js', '/assets/vendor/uPlot.js', '/assets/vendor/uPlot.css']) {
      const response = await call('GET', asset);
      assert.equal(response.status, 200, asset);
      assert.ok((await response.arrayBuffer()).byteLength > 100, asset);
    }
    for (const path of ['/assets/../../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/vendor/../../../package.json']) {
      assert.equal((await request(`${h.url}/`, { path, headers: bearer })).status, 404, path);
    }
    assert.equal((await call('GET', '/assets/index.html')).status, 404, 'pages are templates, not assets');
  });

  test('GET /api/fleet, /api/events, /api/dashboard', async () => {
    const fleet = await (await call('GET', '/api/fleet')).json();
    assert.deepEqual(fleet.pools.flatMap((pool: { workers: Array<{ name: string }> }) => pool.workers.map((worker) => worker.name)), ['web-0', 'web-1', 'clone-0', 'clone-1']);
    const events = await (await call('GET', `/api/events?since=${new Date(Date.now() - 60_000).toISOString()}`)).json();
    assert.ok(events.events.some((event: { kind: string }) => event.kind === 'start'));
    assert.equal((await call('GET', '/api/events?since=soon')).status, 400);
    const dashboard = await (await call('GET', '/api/dashboard')).json();
    assert.equal(dashboard.type, 'snapshot');
    assert.deepEqual(dashboard.keys, { lanes: ['static', 'browser', 'page', 'clone', 'bot'], pools: ['web', 'clone'], workers: ['web-0', 'web-1', 'clone-0', 'clone-1'] });
    assert.equal(dashboard.live.summary.workersReady, 4);
    assert.ok(dashboard.samples.length >= 1);
    assert.deepEqual(
      dashboard.live.lanes.map((lane: { lane: string; pool: string | null }) => [lane.lane, lane.pool]),
      [['static', null], ['browser', 'web'], ['page', 'web'], ['clone', 'clone'], ['bot', 'web']],
    );
  });

  test('lane req/s, error rate, queue and connections come from the proxy state', async () => {
    const page = h.proxy.lanes.find((lane) => lane.lane === 'page')!;
    const cursor = (await (await call('GET', '/api/dashboard')).json()).cursor.sample;
    page.totalRequests += 500;
    page.totalErrors += 5;
    page.minute.p99Ms = 42;
    h.proxy.pools[0].queueDepth = 7;
    h.proxy.connections.byClass.clone = { active: 3, idle: 9 };
    await waitFor(async () => (await (await call('GET', '/api/dashboard')).json()).cursor.sample > cursor + 1, 'two more samples');
    const { live, samples } = await (await call('GET', '/api/dashboard')).json();
    const lanes = Object.fromEntries(live.lanes.map((lane: { lane: string }) => [lane.lane, lane]));
    assert.equal(lanes.page.p99Ms, 42);
    assert.equal(lanes.page.queueDepth, 7);
    assert.deepEqual(lanes.clone.connections, { active: 3, idle: 9 });
    const rates = samples.map((sample: { rps: number[] }) => sample.rps[2]);
    assert.ok(rates.some((rate: number) => rate > 50), `a sample shows the burst on the page lane: ${rates}`);
    assert.equal(live.summary.queueDepth, 7);
  });

  test('each lane shows its own top clients of the pool, the pool\'s 429s and the response spool', async () => {
    const pool = (name: string) => h.proxy.pools.find((candidate) => candidate.name === name)!;
    pool('web').topClients = [
      { lane: 'page', client: '192.0.2.66', holding: 2, queued: 5 },
      { lane: 'bot', client: '198.51.100.0/24', holding: 0, queued: 3 },
      { lane: 'page', client: 'token:Zm9vYmFy', holding: 0, queued: 1 },
      { lane: 'page', client: '2001:db8::/64', holding: 0, queued: 2 },
      { lane: 'page', client: '192.0.2.9', holding: 0, queued: 1 },
    ];
    pool('web').clientShareRefused = 11;
    pool('clone').topClients = [{ lane: 'clone', client: '203.0.113.5', holding: 1, queued: 0 }];
    h.proxy.responseSpool = { memoryBytes: 4096, diskBytes: 3 * 1048576, clients: 2 };
    const liveLanes = async () => {
      const { live } = await (await call('GET', '/api/dashboard')).json();
      return { live, lanes: Object.fromEntries(live.lanes.map((lane: { lane: string }) => [lane.lane, lane])) };
    };
    await waitFor(async () => (await liveLanes()).lanes.page.topClients.length > 0, 'a sample with the top clients');
    const { live, lanes } = await liveLanes();
    assert.deepEqual(
      lanes.page.topClients,
      [
        { client: '192.0.2.66', holding: 2, queued: 5, holdsAll: true },
        { client: '2001:db8::/64', holding: 0, queued: 2, holdsAll: false },
        { client: 'token:Zm9vYmFy', holding: 0, queued: 1, holdsAll: false },
      ],
      'the page lane: its own clients of the web pool, biggest first, three at most',
    );
    assert.deepEqual(lanes.bot.topClients, [{ client: '198.51.100.0/24', holding: 0, queued: 3, holdsAll: false }]);
    assert.deepEqual(lanes.browser.topClients, [], 'the web pool serves the browser lane too, but none of these clients');
    assert.deepEqual(lanes.clone.topClients, [{ client: '203.0.113.5', holding: 1, queued: 0, holdsAll: false }], 'one of two clone workers');
    assert.deepEqual(lanes.static.topClients, []);
    assert.deepEqual([lanes.page.clientShareRefused, lanes.bot.clientShareRefused, lanes.clone.clientShareRefused, lanes.static.clientShareRefused], [11, 11, null, null]);
    assert.deepEqual(live.summary.responseSpool, { memoryBytes: 4096, diskBytes: 3 * 1048576, clients: 2 });
  });

  test("the clone lane's row shows clone sharing: requests by result and the spool's disk use", async () => {
    const sharing = { requests: { miss: 2, coalesced: 38, hit: 20, bypass: 1 }, diskBytes: 5 * 1048576, entries: 2, waiting: 0 };
    h.proxy.cloneSharing = sharing;
    const cloneLane = async () => (await (await call('GET', '/api/dashboard')).json()).live.lanes.find((lane: { lane: string }) => lane.lane === 'clone');
    await waitFor(async () => (await cloneLane()).cloneSharing !== null, 'a sample with clone sharing');
    const { live } = await (await call('GET', '/api/dashboard')).json();
    const lanes = Object.fromEntries(live.lanes.map((lane: { lane: string; cloneSharing: unknown }) => [lane.lane, lane.cloneSharing]));
    assert.deepEqual(lanes, { static: null, browser: null, page: null, clone: sharing, bot: null });
  });

  test('lane history: 400 without since, 503 without a history store, minutes from it otherwise', async () => {
    assert.equal((await call('GET', '/api/lanes/history')).status, 400);
    assert.equal((await call('GET', '/api/lanes/history?since=2026-01-01T00:00:00Z')).status, 503);
    const minute: LaneMinute = { minute: new Date('2026-01-01T10:00:00Z'), lane: 'page', requests: 600, errors: 1, p50Ms: 3, p99Ms: 40, queuePeak: 2 };
    const asked: Array<{ since: Date; lane?: string }> = [];
    const history = {
      recordEvent() {},
      recordLaneMinute() {},
      events: async () => [],
      laneStats: async (opts: { since: Date; lane?: string }) => {
        asked.push(opts);
        return [minute];
      },
      status: () => ({ backend: 'embedded', healthy: true, pending: 0, dropped: 0 }),
      setRetentionDays() {},
    } as unknown as HistoryStore;
    h.supervisor.attachHistory(history);
    const body = await (await call('GET', '/api/lanes/history?since=2026-01-01T09:00:00Z&lane=page')).json();
    assert.deepEqual(body.minutes, [{ ...minute, minute: minute.minute.toISOString() }]);
    assert.equal(asked.at(-1)!.lane, 'page');
    const ancient = await call('GET', '/api/lanes/history?since=1999-01-01T00:00:00Z');
    assert.equal(ancient.status, 200);
    assert.ok(asked.at(-1)!.since.getTime() > Date.now() - 32 * 86_400_000, 'history reads are capped to a month');
  });

  test('drain, ready, recycle and roll; unknown names are 404, the last ready worker 409', async () => {
    assert.equal((await call('POST', '/api/workers/web-0/drain')).status, 202);
    assert.equal(h.supervisor.fleet.get('web-0')!.state, 'draining');
    assert.equal((await call('POST', '/api/workers/web-1/drain')).status, 409);
    assert.equal((await call('POST', '/api/workers/web-0/ready')).status, 200);
    assert.equal(h.supervisor.fleet.get('web-0')!.state, 'ready');
    assert.equal((await call('POST', '/api/workers/web-7/drain')).status, 404);
    assert.equal((await call('POST', '/api/workers/nope/recycle')).status, 404);
    assert.equal((await call('POST', '/api/pools/nope/roll')).status, 404);

    const oldPid = h.supervisor.fleet.get('clone-1')!.pid;
    const recycle = await call('POST', '/api/workers/clone-1/recycle');
    assert.equal(recycle.status, 202);
    const { eventCursor, ...answer } = await recycle.json();
    assert.deepEqual(answer, { worker: 'clone-1', queued: true, alreadyPending: false });
    assert.deepEqual(Object.keys(eventCursor), ['stream', 'after']);
    await waitFor(() => h.supervisor.fleet.get('clone-1')!.state === 'ready' && h.supervisor.fleet.get('clone-1')!.pid !== oldPid, 'clone-1 recycled');
    assert.deepEqual(h.restarts, ['clone-1']);

    const roll = await call('POST', '/api/pools/web/roll');
    assert.equal(roll.status, 202);
    assert.deepEqual((await roll.json()).queued, ['web-0', 'web-1']);
    const metricsText = async () => (await call('GET', '/metrics')).text();
    await waitFor(async () => /switchyard_worker_recycles_total\{pool="web",reason="roll",host="[^"]+"\} 2/.test(await metricsText()), 'web rolled', 15_000);
    assert.deepEqual(h.restarts, ['clone-1', 'web-0', 'web-1']);
    const metrics = await metricsText();
    assert.match(metrics, /switchyard_worker_recycles_total\{pool="clone",reason="rss",host="[^"]+"\} 0/, 'every pool and reason is exported from the start');
    assert.match(metrics, /switchyard_worker_rss_bytes\{worker="web-0",host="[^"]+"\} \d+/);
    assert.match(metrics, /switchyard_requests_total\{proxy="[^"]+",lane="page",code="200"\} 3/, "the proxy's series come first, labelled");
  });

  test('drain, recycle and roll answer with an event cursor; /api/events?after= gives the steps that followed, with ids', async () => {
    const eventsAfter = async (after: number, query = '') => (await call('GET', `/api/events?after=${after}${query}`)).json();
    const steps = (events: Array<{ id: number; kind: string; worker?: string; reason?: string; detail?: { drained?: boolean } }>) =>
      events.map((event) => [event.id, event.kind, event.worker, event.reason, event.detail?.drained]);

    const drain = await (await call('POST', '/api/workers/clone-0/drain')).json();
    assert.equal(drain.started, true);
    const { stream, after } = drain.eventCursor;
    assert.match(stream, /^[0-9a-f-]{36}$/);
    await waitFor(async () => (await eventsAfter(after)).events.length === 2, 'the drain done', 10_000);
    const drained = await eventsAfter(after);
    assert.equal(drained.stream, stream);
    assert.equal(drained.missed, false);
    assert.deepEqual(steps(drained.events), [
      [after + 1, 'drain', 'clone-0', 'manual', undefined],
      [after + 2, 'drain', 'clone-0', 'manual', true],
    ]);
    const again = await (await call('POST', '/api/workers/clone-0/drain')).json();
    assert.equal(again.started, false, 'a drained worker is not drained twice');
    assert.deepEqual(again.eventCursor, { stream, after: after + 2 });
    await call('POST', '/api/workers/clone-0/ready');

    const recycle = await (await call('POST', '/api/workers/clone-0/recycle')).json();
    assert.deepEqual(recycle.eventCursor, { stream, after: after + 3 }, 'the undrain was event after + 3');
    await waitFor(async () => (await eventsAfter(after + 3)).events.some((event: { kind: string }) => event.kind === 'recycle'), 'clone-0 recycled', 15_000);
    assert.deepEqual(steps((await eventsAfter(after + 3)).events), [
      [after + 4, 'drain', 'clone-0', 'manual', undefined],
      [after + 5, 'recycle', 'clone-0', 'manual', undefined],
    ]);
    const roll = await (await call('POST', '/api/pools/clone/roll')).json();
    assert.deepEqual([roll.queued.length + roll.alreadyPending.length, roll.eventCursor.after], [2, after + 5]);
    await waitFor(async () => (await eventsAfter(after + 5)).events.filter((event: { kind: string }) => event.kind === 'recycle').length === 2, 'clone rolled', 20_000);

    assert.deepEqual(steps((await eventsAfter(after, '&limit=1')).events), [[after + 1, 'drain', 'clone-0', 'manual', undefined]]);
    assert.deepEqual(await eventsAfter(after + 1000), { stream, events: [], missed: false }, 'nothing after the newest');
    for (const query of ['after=-1', 'after=x', 'after=', `after=1&since=${new Date().toISOString()}`]) {
      assert.equal((await call('GET', `/api/events?${query}`)).status, 400, query);
    }
    const last = (await eventsAfter(after)).events.at(-1).id;
    for (let i = 0; i < 1001; i++) h.supervisor.events.record({ kind: 'config', reason: `filler ${i}` });
    const overrun = await eventsAfter(last);
    assert.equal(overrun.missed, true, 'events pushed out of memory are reported, not silently skipped');
    assert.equal(overrun.events[0].id, last + 2);
  });

  test('login form: wrong, empty or missing token 401, cross-origin 403, right token sets an HttpOnly SameSite=Strict session', async () => {
    const wrong = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: 'nope' }) });
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /not the admin token/);
    assert.equal(wrong.headers.get('set-cookie'), null);
    for (const body of [new URLSearchParams({ token: '' }), new URLSearchParams({}), new URLSearchParams({ token: ' ' })]) {
      const empty = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body });
      assert.equal(empty.status, 401, `login with ${body}`);
      assert.equal(empty.headers.get('set-cookie'), null);
    }
    const crossSite = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: HARNESS_TOKEN }), headers: { origin: 'http://evil.example' } });
    assert.equal(crossSite.status, 403);

    const right = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: HARNESS_TOKEN }), headers: { origin: h.url } });
    assert.equal(right.status, 303);
    assert.equal(right.headers.get('location'), '/');
    const cookie = right.headers.get('set-cookie')!;
    assert.match(cookie, /^switchyard_session=[\w-]{43}\.\d+\.[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const json = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body: JSON.stringify({ token: HARNESS_TOKEN }), headers: { 'content-type': 'application/json' } });
    assert.equal(json.status, 303, 'a JSON body works too');
  });

  test('a session reads freely but needs its CSRF token to act; Bearer clients need none; logout ends it', async () => {
    const { cookie, csrf } = await login(h.url);
    assert.equal((await call('GET', '/api/fleet', { cookie })).status, 200);
    assert.equal((await call('GET', '/', { cookie })).status, 200);
    assert.equal((await call('POST', '/api/workers/web-0/drain', { cookie })).status, 403, 'no CSRF token');
    assert.equal((await call('POST', '/api/workers/web-0/drain', { cookie, 'x-csrf-token': 'guess' })).status, 403, 'wrong CSRF token');
    const other = await login(h.url);
    assert.equal((await call('POST', '/api/workers/web-0/drain', { cookie, 'x-csrf-token': other.csrf })).status, 403, "another session's token");
    assert.equal((await call('POST', '/api/workers/web-0/drain', { cookie, 'x-csrf-token': csrf })).status, 202);
    assert.equal((await call('POST', '/api/workers/web-0/ready')).status, 200, 'Bearer: no CSRF token needed');

    assert.equal((await call('POST', '/logout', { cookie })).status, 403, 'logout is CSRF-protected too');
    const logout = await call('POST', '/logout', { cookie, 'x-csrf-token': csrf });
    assert.equal(logout.status, 204);
    assert.match(logout.headers.get('set-cookie')!, /^switchyard_session=; .*Max-Age=0/);
    assert.equal((await call('GET', '/api/fleet', { cookie })).status, 401, 'the session is gone');
    assert.equal((await call('GET', '/api/fleet', { cookie: other.cookie })).status, 200, 'other sessions stay');
  });
});

describe('dashboard HTTP API: wrong tokens are rate limited', () => {
  let h: DashboardHarness;

  before(async () => {
    h = await startDashboardHarness({ access: { limiter: new FailureLimiter(3, 60_000) } });
  });
  after(async () => {
    await h?.close();
  });

  test('after the burst: wrong tokens get 429 with Retry-After, the right token still passes, by Bearer and login alike', async () => {
    const { cookie } = await login(h.url);
    const wrong = () => fetch(`${h.url}/api/fleet`, { headers: { authorization: 'Bearer wrong' } });
    assert.equal((await wrong()).status, 401);
    assert.equal((await wrong()).status, 401);
    const loginWrong = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: 'wrong' }) });
    assert.equal(loginWrong.status, 401);

    const limited = await wrong();
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const loginLimited = await fetch(`${h.url}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: '' }) });
    assert.equal(loginLimited.status, 429);
    assert.ok(Number(loginLimited.headers.get('retry-after')) >= 1);

    // Every local client shares 127.0.0.1: a guesser there must not lock the operator out.
    assert.equal((await fetch(`${h.url}/api/fleet`, { headers: bearer })).status, 200, 'the right Bearer token passes while the address is limited');
    await login(h.url);
    assert.equal((await fetch(`${h.url}/api/fleet`, { headers: { cookie } })).status, 200, 'an existing session is not locked out');
    assert.equal((await wrong()).status, 429, 'a right token does not refill the budget of wrong ones');
  });
});

test('a top client holds all of a pool when it holds every slot of its ready workers', () => {
  const workers = ['ready', 'draining', 'ready'].map((state, index) => ({ name: `web-${index}`, state, inflight: 1, failures: 0 }));
  const pool = { name: 'web', queueDepth: 0, workers, topClients: [{ lane: 'page', client: '192.0.2.1', holding: 4, queued: 0 }, { lane: 'page', client: '192.0.2.2', holding: 1, queued: 0 }] };
  const holdsAll = (concurrency: number) => topClientsOf(pool, 'page', { laneToPool: { page: 'web' }, concurrency: { web: concurrency } }).map((client) => client.holdsAll);
  assert.deepEqual(holdsAll(2), [true, false], 'two ready workers of two slots each');
  assert.deepEqual(holdsAll(3), [false, false]);
  assert.deepEqual(topClientsOf({ ...pool, topClients: undefined }, 'page', { laneToPool: {}, concurrency: {} }), [], 'a proxy from before fair share');
});

test('the failure limiter refills one attempt per interval and forgets full buckets', () => {
  const limiter = new FailureLimiter(2, 1000, 2);
  limiter.fail('a', 0);
  assert.equal(limiter.retryAfterSec('a', 0), 0);
  limiter.fail('a', 0);
  assert.equal(limiter.retryAfterSec('a', 0), 1);
  assert.equal(limiter.retryAfterSec('a', 999), 1);
  assert.equal(limiter.retryAfterSec('a', 1000), 0);
  limiter.fail('b', 0);
  limiter.fail('c', 0);
  limiter.fail('d', 0);
  assert.equal(limiter.retryAfterSec('b', 0), 0, 'over maxKeys the least recently failed is forgotten');
});

test('session cookies: signed with the admin token, tamper-proof, expiring, revocable', () => {
  const sessions = new SessionStore('token-a', { ttlMs: 1000 });
  const session = sessions.create(0);
  assert.equal(sessions.get(session.cookieValue, 500)?.id, session.id);
  assert.equal(sessions.get(session.cookieValue, 500)?.csrf, session.csrf, 'the CSRF token follows from the session');
  assert.notEqual(sessions.create(0).csrf, session.csrf);
  const [id, expiry, signature] = session.cookieValue.split('.');
  assert.equal(sessions.get(`${id}.${Number(expiry) + 60_000}.${signature}`, 500), undefined, 'a stretched expiry');
  assert.equal(sessions.get(`${id}x.${expiry}.${signature}`, 500), undefined, 'another id');
  assert.equal(sessions.get(session.cookieValue, 1000), undefined, 'expired');
  assert.equal(new SessionStore('token-b').get(session.cookieValue, 500), undefined, 'a new admin token ends every session');
  assert.equal(new SessionStore('token-a', { ttlMs: 1000 }).get(session.cookieValue, 500)?.id, session.id, 'a restarted supervisor keeps it');
  sessions.revoke(session, 500);
  assert.equal(sessions.get(session.cookieValue, 600), undefined, 'logged out');
});

test('logouts are kept in the sessions file: a store that reads it again refuses them, other sessions stay', () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'switchyard-sessions-')), 'dashboard-sessions.json');
  const now = Date.now();
  const before = new SessionStore('token-a', { file, ttlMs: 60_000 });
  const [loggedOut, kept] = [before.create(now), before.create(now)];
  before.revoke(loggedOut, now);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const after = new SessionStore('token-a', { file, ttlMs: 60_000 });
  assert.equal(after.get(loggedOut.cookieValue, now), undefined, 'the logout outlives the store');
  assert.equal(after.get(kept.cookieValue, now)?.id, kept.id, 'the sessions themselves outlive it too');
  after.revoke(kept, now + 60_000);
  assert.deepEqual(Object.keys(JSON.parse(readFileSync(file, 'utf8')).revoked), [kept.id], 'an expired logout is dropped from the file');
});

test('one logout more than the sessions file keeps ends every session instead of forgetting one', () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'switchyard-sessions-')), 'dashboard-sessions.json');
  const sessions = new SessionStore('token-a', { file, maxRevoked: 3 });
  const all = Array.from({ length: 5 }, () => sessions.create(0));
  for (const session of all.slice(0, 3)) sessions.revoke(session, 1);
  assert.equal(sessions.get(all[4].cookieValue, 2)?.id, all[4].id);
  sessions.revoke(all[3], 2);
  for (const session of all) assert.equal(sessions.get(session.cookieValue, 3), undefined, 'every session ended, the logged-out ones included');
  const reread = new SessionStore('token-a', { file, maxRevoked: 3 });
  for (const session of all) assert.equal(reread.get(session.cookieValue, 3), undefined, 'and they stay ended after a restart');
  const fresh = reread.create(3);
  assert.equal(reread.get(fresh.cookieValue, 4)?.id, fresh.id, 'new logins work');
});

test('an unreadable sessions file ends every session (logouts it held cannot be honoured one by one)', () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'switchyard-sessions-')), 'dashboard-sessions.json');
  const session = new SessionStore('token-a', { file }).create(0);
  for (const content of ['{"epoch": "short", "revoked": {}}', 'not json', '{"epoch":"aaaaaaaaaaaaaaaaaaaaaa","revoked":{"x":"soon"}}']) {
    writeFileSync(file, content);
    assert.equal(new SessionStore('token-a', { file }).get(session.cookieValue, 1), undefined, content);
  }
});

test('wrong-token budgets: IPv4 per address, IPv6 per /64, mapped IPv4 as IPv4', () => {
  assert.equal(budgetKey('127.0.0.1'), '127.0.0.1');
  assert.equal(budgetKey('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(budgetKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(budgetKey('2001:db8:1:2:ffff::1'), budgetKey('2001:db8:1:2::9'));
  assert.notEqual(budgetKey('2001:db8:1:3::1'), budgetKey('2001:db8:1:2::1'));
  assert.equal(budgetKey('::1'), '0:0:0:0::/64');
});

test('an empty admin token is refused by every authenticator, not taken as "no authentication"', () => {
  for (const token of ['', '  ']) {
    assert.throws(() => new Access(token), /admin token is empty/);
    assert.throws(() => new SessionStore(token), /admin token is empty/);
    assert.throws(() => new ControlServer({} as SwitchyardProxy, token, pino({ level: 'silent' })), /admin token is empty/);
  }
});
