// The dashboard in real Chromium against the whole stack under PM2: log in, see every worker,
// watch in-flight counts and charts move under load, recycle a worker from the page and follow it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startFleetStack, TEST_TOKEN, type FleetStack } from '../../helpers/fleet-stack.ts';
import { HARNESS_TOKEN, login, startDashboardHarness, type DashboardHarness } from '../../helpers/dashboard-harness.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';
import { ARTIFACTS_DIR, launchChromium, signedInPage } from './browser.ts';
import { PrivateRedis } from '../../helpers/private-redis.ts';
import { fleetKey, signProxyAnnouncement } from '../../../lib/fleet-signing.ts';
import { PROXIES_KEY, type ProxyAnnouncement } from '../../../lib/proxy-announcement.ts';

/** A client with more requests in flight than its share: it shows among the page lane's top clients. */
const GREEDY = '127.0.2.1';

const LOAD: Array<{ count: number; path: string; headers: Record<string, string>; localAddress?: string }> = [
  { count: 10, path: '/', headers: {} },
  { count: 6, path: '/', headers: {}, localAddress: GREEDY },
  { count: 4, path: '/', headers: { 'user-agent': 'Mozilla/5.0 Chrome/126.0', accept: 'text/html', 'sec-fetch-mode': 'navigate' } },
  { count: 3, path: '/demo-git/info/refs?service=git-upload-pack', headers: { 'user-agent': 'git/2.39.2' } },
  { count: 2, path: '/', headers: { 'user-agent': 'Jenkins/2.4' } },
];

/** Keeps `count` requests in flight per kind until stopped; resolves with how many were answered. */
function generateLoad(proxyUrl: string): { stop(): Promise<number> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let running = true;
  let answered = 0;
  const one = (path: string, headers: Record<string, string>, localAddress?: string) =>
    new Promise<void>((resolve) => {
      const req = http.get(`${proxyUrl}${path}`, { agent, headers, localAddress }, (res) => {
        res.resume();
        res.on('end', () => {
          answered++;
          resolve();
        });
      });
      req.on('error', () => setTimeout(resolve, 50));
    });
  const loops = LOAD.flatMap(({ count, path, headers, localAddress }) =>
    Array.from({ length: count }, async () => {
      while (running) await one(path, headers, localAddress);
    }),
  );
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return answered;
    },
  };
}

// Limits far above what the test reaches: the page shows a countdown, nothing recycles by itself.
const RECYCLE = { maxRequests: 50_000, maxAgeSec: 7200, maxRssMb: 400 };

describe('dashboard in Chromium against the PM2 stack', () => {
  let stack: FleetStack;
  let browser: Browser;
  let page: Page;

  before(async () => {
    [stack, browser] = await Promise.all([
      historyDatabaseEnv().then((env) => startFleetStack({ pools: { web: { instances: 2, recycle: RECYCLE }, clone: { instances: 2, recycle: RECYCLE } }, lanes: { bot: { pool: 'web' } } }, env)),
      launchChromium(),
    ]);
    page = await browser.newPage({ viewport: { width: 1440, height: 1300 } });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('log in, see the fleet live, recycle a worker from the page', async () => {
    await page.goto(stack.supervisorUrl);
    assert.equal(new URL(page.url()).pathname, '/login', 'an anonymous visitor lands on the login page');
    await page.fill('#token', 'not-the-token');
    await page.click('button[type=submit]');
    assert.match(await page.locator('.login-error').textContent() ?? '', /not the admin token/);
    await page.fill('#token', TEST_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${stack.supervisorUrl}/`);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });

    for (const worker of ['web-0', 'web-1', 'clone-0', 'clone-1']) {
      await page.locator(`tr[data-worker="${worker}"] [data-field="state"]`).filter({ hasText: 'ready' }).waitFor({ timeout: 15_000 });
    }
    await page.locator('#live-badge').filter({ hasText: /^live$/ }).waitFor({ timeout: 5_000 });
    assert.equal(await page.locator('#stale').isHidden(), true);

    const load = generateLoad(stack.proxyUrl);
    try {
      // In-flight counts come from the workers' health (polled every second): catch one above 0.
      await page.waitForFunction(
        () => [...document.querySelectorAll('[data-field="inflight"]')].some((cell) => Number(cell.textContent) > 0),
        undefined,
        { timeout: 15_000, polling: 100 },
      );
      await page.waitForFunction(() => Number(document.getElementById('chart-rps')?.dataset.max) > 1, undefined, { timeout: 15_000 });
      await page.locator('tr[data-lane="page"] td').nth(2).filter({ hasNotText: /^0\.0$/ }).waitFor();
      assert.ok(Number(await page.locator('[data-kpi="rps"]').textContent()) > 0, 'the header shows requests/s');
      // The greedy client holds its one slot and waits behind its own requests: the lane names it.
      await page.locator('tr[data-lane="page"] [data-field="clients"] .top-client.waiting').filter({ hasText: GREEDY }).first().waitFor({ timeout: 15_000 });
      assert.match((await page.locator('tr[data-lane="page"] [data-field="refused"]').textContent()) ?? '', /^\d/, "the web pool's 429 count");
      assert.match((await page.locator('[data-kpi="spool"]').textContent()) ?? '', /^\d+(\.\d+)? (B|KB|MB|GB)$/, 'the header shows the response spool on disk');

      const before = await stack.fleet();
      const oldPid = before.find((worker) => worker.name === 'web-0')!.pid!;
      await page.evaluate(() => {
        const badge = document.querySelector('tr[data-worker="web-0"] [data-field="state"]')!;
        const seen: string[] = [];
        (window as unknown as { seenStates: string[] }).seenStates = seen;
        new MutationObserver(() => seen.push(badge.textContent ?? '')).observe(badge, { childList: true, characterData: true, subtree: true });
      });
      await page.click('tr[data-worker="web-0"] button[data-action="recycle"]');
      assert.match((await page.locator('#confirm-title').textContent()) ?? '', /Recycle web-0\?/);
      await page.click('#confirm-ok');
      await page.locator('.toast.ok').filter({ hasText: 'web-0 queued for recycling' }).waitFor({ timeout: 5_000 });

      await page.waitForFunction(
        (pid) => {
          const row = document.querySelector('tr[data-worker="web-0"]');
          const states = (window as unknown as { seenStates: string[] }).seenStates;
          return row?.querySelector('[data-field="state"]')?.textContent === 'ready' && row.children[1].textContent !== String(pid) && states.length > 0;
        },
        oldPid,
        { timeout: 45_000, polling: 100 },
      );
      const states = await page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates);
      assert.ok(states.some((state) => state === 'draining' || state === 'restarting'), `web-0 went out of rotation and back: ${states.join(' -> ')}`);
      await page.locator('#events li[data-kind="recycle"][data-worker="web-0"]').waitFor({ timeout: 10_000 });
      assert.match((await page.locator('#events li[data-kind="recycle"][data-worker="web-0"]').first().textContent()) ?? '', /manual/);
      const after = (await stack.fleet()).find((worker) => worker.name === 'web-0')!;
      assert.notEqual(after.pid, oldPid, 'PM2 started a new process');

      await page.waitForTimeout(1500); // one more round of samples so the chart shows the dip and recovery
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'dashboard.png'), fullPage: true });

      const metrics = (await stack.api('GET', '/metrics')).body as string;
      for (const series of [
        // the proxy's series, each with the proxy's id
        /switchyard_requests_total\{proxy="[^"]+",lane="page",code="200"\} \d+/,
        /switchyard_request_duration_seconds_bucket\{proxy="[^"]+",le="0.1",lane="clone"\} \d+/,
        /switchyard_queue_depth\{proxy="[^"]+",pool="web"\} \d+/,
        /switchyard_worker_rss_bytes\{worker="clone-1",host="[^"]+"\} \d+/,
        /switchyard_worker_recycles_total\{pool="web",reason="manual",host="[^"]+"\} 1/,
        /switchyard_client_connections\{proxy="[^"]+",class="browser",state="active"\} \d+/,
      ]) {
        assert.match(metrics, series);
      }
    } finally {
      const answered = await load.stop();
      assert.ok(answered > 100, `load generator got answers (${answered})`);
    }
    assert.deepEqual(pageErrors, [], 'no errors in the page (CSP violations included)');
  });

  test('with the supervisor down the page says it is stale, and picks up again by itself after a restart', async () => {
    await stack.pm2.stop('supervisor');
    await page.locator('#stale').waitFor({ state: 'visible', timeout: 10_000 });
    assert.match((await page.locator('#stale-text').textContent()) ?? '', /reconnecting/);
    assert.equal(await page.locator('#live-badge').textContent(), 'stale');
    await stack.pm2.restart('supervisor');
    await page.locator('#stale').waitFor({ state: 'hidden', timeout: 30_000 });
    assert.equal(new URL(page.url()).pathname, '/', 'the signed session outlives the supervisor process');
    await page.locator('#live-badge').filter({ hasText: /^live$/ }).waitFor({ timeout: 5_000 });
  });
});

describe('dashboard in Chromium: top clients from a proxy state', () => {
  let h: DashboardHarness;
  let browser: Browser;

  before(async () => {
    [h, browser] = await Promise.all([startDashboardHarness(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  test('each client is text in its lane, marked when it holds the whole pool or waits; spool and 429s show', async () => {
    // Client keys come from the network: one that looks like markup must stay text.
    const markup = '<img src=x onerror="window.injected=1">';
    const web = h.proxy.pools.find((pool) => pool.name === 'web')!;
    web.topClients = [
      { lane: 'page', client: '192.0.2.66', holding: 2, queued: 5 },
      { lane: 'bot', client: markup, holding: 0, queued: 1 },
    ];
    web.clientShareRefused = 11;
    h.proxy.responseSpool = { memoryBytes: 0, diskBytes: 3 * 1048576, clients: 1 };
    const { context, page } = await signedInPage(browser, h.url);

    const pageClients = page.locator('tr[data-lane="page"] [data-field="clients"]');
    await pageClients.locator('.top-client.holds-all.waiting').filter({ hasText: '192.0.2.66' }).waitFor({ timeout: 10_000 });
    assert.equal(await pageClients.textContent(), '192.0.2.66 2 held · 5 queued');
    const botClients = page.locator('tr[data-lane="bot"] [data-field="clients"]');
    assert.equal(await botClients.textContent(), `${markup} 1 queued`);
    assert.equal(await page.locator('#lanes img').count(), 0, 'a client key never becomes markup');
    assert.equal(await page.evaluate(() => (window as unknown as { injected?: number }).injected), undefined);
    assert.equal(await page.locator('tr[data-lane="browser"] [data-field="clients"]').textContent(), '–');
    assert.equal(await page.locator('tr[data-lane="page"] [data-field="refused"]').textContent(), '11');
    assert.equal(await page.locator('[data-kpi="spool"]').textContent(), '3.0 MB');
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'dashboard-top-clients.png'), fullPage: true });

    web.topClients = [];
    await pageClients.filter({ hasText: /^–$/ }).waitFor({ timeout: 5_000 });
    await context.close();
  });
});

describe('dashboard in Chromium: the proxies of the site', () => {
  let h: DashboardHarness;
  let redis: PrivateRedis;
  let browser: Browser;

  before(async () => {
    redis = await PrivateRedis.create();
    [h, browser] = await Promise.all([startDashboardHarness({ redisUrl: redis.url }), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    await redis?.remove();
  });

  test('one row per proxy: this host\'s up, a silent one marked down', async () => {
    const key = fleetKey(HARNESS_TOKEN);
    const announce = (announcement: ProxyAnnouncement) => client.hset(PROXIES_KEY, announcement.id, signProxyAnnouncement(key, announcement));
    const client = redis.client();
    const base = { version: '0.1.0+e2e', startedAt: new Date(Date.now() - 3_600_000).toISOString(), pid: 4321 };
    await announce({ ...base, id: 'a:8080', host: h.supervisor.site.self.name, address: '192.0.2.10:8080', control: h.proxyControlUrl, at: Date.now() });
    // a proxy on another host whose heartbeat stopped a minute ago (its control port answers nothing)
    await announce({ ...base, id: 'b:8080', host: 'b', address: '192.0.2.11:8080', control: 'http://127.0.0.1:9', pid: 99, at: Date.now() - 60_000 });
    client.disconnect();

    const { context, page } = await signedInPage(browser, h.url);

    const rows = page.locator('#proxies tbody tr');
    await page.locator('#proxies tr[data-proxy="b:8080"]').waitFor({ timeout: 10_000 });
    await page.locator('#proxies tr[data-proxy="a:8080"] .badge.state-ready').waitFor({ timeout: 10_000 });
    assert.equal(await rows.count(), 2, 'the configured proxy and its announcement are one row');
    const cells = async (id: string) => page.locator(`#proxies tr[data-proxy="${id}"] td`).allTextContents();
    assert.deepEqual((await cells('a:8080')).slice(0, 3), ['a:8080', '192.0.2.10:8080', 'up']);
    assert.equal((await cells('a:8080'))[5], '0.1.0+e2e');
    assert.deepEqual((await cells('b:8080')).slice(0, 5), ['b:8080', '192.0.2.11:8080', 'down', '–', '–']);
    assert.equal(await page.locator('#proxies tr[data-proxy="b:8080"] .badge').getAttribute('class'), 'badge state-down');
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'dashboard-proxies.png'), fullPage: true });
    await context.close();
  });
});
