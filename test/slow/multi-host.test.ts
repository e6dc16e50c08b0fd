// A site of two hosts (network namespaces a and b, test/helpers/site-stack.ts), each running a
// proxy, a supervisor, one web and two clone workers under its own pm2-runtime, sharing a Redis
// and a PostgreSQL: the issue-22 promises seen from the outside. One site serves every case, in
// order; each case leaves it as it found it (every worker ready in every proxy).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request, sleep, waitFor, type SimpleResponse } from '../helpers/http.ts';
import { SITE_TOKEN, startSite, type Site, type SiteHost } from '../helpers/site-stack.ts';
import { gitClone, hgClone, verifyGitClone, verifyHgClone } from '../helpers/vcs-clones.ts';
import { removeDir, tempDir } from '../helpers/worker-harness.ts';
import { ARTIFACTS_DIR, launchChromium, signedInPage } from './e2e/browser.ts';

/** how long a proxy, a supervisor or the site view may take to see a change (health checks every 500 ms, reports every 2 s) */
const NOTICE_MS = 30_000;
const REQUESTS = 12;

let site: Site;
let a: SiteHost;
let b: SiteHost;
let scratch: string;

before(async () => {
  scratch = await tempDir('switchyard-multi-host-');
  site = await startSite({ overrides: { pools: { web: { instances: 1, maxUnavailable: 1 }, clone: { instances: 2, maxUnavailable: 1 } } } });
  a = site.host('a');
  b = site.host('b');
});

after(async () => {
  await site?.remove();
  if (scratch) await removeDir(scratch);
});

const page = (host: SiteHost, headers: Record<string, string> = {}) => request(`${host.proxyUrl}/`, { headers, timeoutMs: 10_000 });

/** The ref advertisement of demo-git as a git client asks for it, from the given client address: the clone lane. */
const cloneRequest = (host: SiteHost, client: string) =>
  request(`${host.proxyUrl}/demo-git/info/refs?service=git-upload-pack`, {
    headers: { 'user-agent': 'git/2.43.0', 'git-protocol': 'version=2', 'x-forwarded-for': client },
    timeoutMs: 10_000,
  });

/** `count` page requests one after another; every answer's status and worker. */
async function pages(host: SiteHost, count = REQUESTS): Promise<SimpleResponse[]> {
  const answers: SimpleResponse[] = [];
  for (let i = 0; i < count; i++) answers.push(await page(host));
  return answers;
}

const workerOf = (answer: SimpleResponse) => String(answer.headers['x-switchyard-worker']);
const summary = (answers: SimpleResponse[]) => answers.map((answer) => `${answer.status}:${workerOf(answer)}`).join(' ');

/** The worker's state in the host's proxy (its control API's /state). */
async function routedState(host: SiteHost, worker: string): Promise<string | undefined> {
  return (await host.proxyWorkers()).find((each) => each.name === worker)?.state;
}

async function waitForRoutedState(host: SiteHost, worker: string, expected: (state: string | undefined) => boolean, what: string): Promise<void> {
  let last: string | undefined;
  await waitFor(
    async () => expected((last = await routedState(host, worker).catch(() => 'unanswered'))),
    `${worker} ${what} in host ${host.name}'s proxy`,
    NOTICE_MS,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last seen: ${last})`);
  });
}

interface SiteHostView {
  name: string;
  up: boolean;
  lastSeenAt: string | null;
}
interface ProxyView {
  id: string;
  up: boolean;
  address: string | null;
  lastSeenAt: string | null;
}

async function siteView(host: SiteHost): Promise<{ hosts: SiteHostView[]; proxies: ProxyView[] }> {
  const { status, body } = await host.api('GET', '/api/fleet');
  assert.equal(status, 200);
  return body;
}

test('a client is served through either proxy, by both hosts\' workers, pages and real git and hg clones', async () => {
  for (const host of [a, b]) {
    const answers = await pages(host);
    assert.ok(answers.every((answer) => answer.status === 200 && /demo-git/.test(answer.body)), summary(answers));
    assert.deepEqual(new Set(answers.map(workerOf)), new Set(['web-a-0', 'web-b-0']), `through ${host.name}'s proxy: ${summary(answers)}`);

    const git = path.join(scratch, `git-via-${host.name}`);
    await gitClone(`${host.proxyUrl}/demo-git`, git, 2);
    await verifyGitClone(git, path.join(a.data, 'repos', 'demo-git'));
    const hg = path.join(scratch, `hg-via-${host.name}`);
    await hgClone(`${host.proxyUrl}/demo-hg`, hg);
    await verifyHgClone(hg, path.join(a.data, 'repos', 'demo-hg'));
  }
});

test('the IP-hash ring is the same in every proxy: a client\'s clone requests reach one worker through either', async () => {
  const placed = new Map<string, string>();
  for (let i = 1; i <= 20; i++) {
    const client = `198.51.100.${i * 7}`;
    const [viaA, viaB] = [await cloneRequest(a, client), await cloneRequest(b, client)];
    assert.equal(viaA.status, 200, `${client} through a: ${viaA.status} ${viaA.body.slice(0, 200)}`);
    assert.equal(viaB.status, 200, `${client} through b: ${viaB.status} ${viaB.body.slice(0, 200)}`);
    assert.equal(viaA.headers['x-switchyard-lane'], 'clone');
    assert.equal(workerOf(viaA), workerOf(viaB), `client ${client}: through a ${workerOf(viaA)}, through b ${workerOf(viaB)}`);
    placed.set(client, workerOf(viaA));
  }
  const hostsReached = new Set([...placed.values()].map((worker) => worker.split('-')[1]));
  assert.deepEqual(hostsReached, new Set(['a', 'b']), `the ring spreads the 20 clients over both hosts: ${[...placed.values()].join(' ')}`);
});

test('one supervisor sees the whole site: both proxies and hosts in /api/fleet, every series in /metrics', async () => {
  const view = await siteView(b);
  for (const host of [a, b]) {
    const proxy = view.proxies.find((each) => each.id === `${host.name}:8080`);
    assert.equal(proxy?.up, true, `proxy ${host.name}:8080 in b's view: ${JSON.stringify(view.proxies)}`);
    assert.equal(proxy?.address, `${host.address}:8080`, 'its client-facing address (the wildcard listen announced as the host\'s address)');
    assert.equal(view.hosts.find((each) => each.name === host.name)?.up, true, `host ${host.name} in b's view: ${JSON.stringify(view.hosts)}`);
  }
  const metrics = await request(`${b.supervisorUrl}/metrics`, { headers: { authorization: `Bearer ${SITE_TOKEN}` } });
  assert.equal(metrics.status, 200);
  const sample = (name: string, labels: string[]) =>
    metrics.body.split('\n').find((line) => line.startsWith(`${name}{`) && labels.every((label) => line.slice(0, line.indexOf('}')).includes(label)));
  for (const host of [a, b]) {
    // the first case sent REQUESTS pages through each proxy
    const pagesServed = sample('switchyard_requests_total', [`proxy="${host.name}:8080"`, 'lane="page"', 'code="200"']);
    assert.ok(pagesServed && Number(pagesServed.split(' ').at(-1)) >= REQUESTS, `${host.name}'s proxy's page count on b's /metrics: ${pagesServed}`);
    for (const worker of site.workersOn(host.name)) {
      const up = sample('switchyard_worker_up', [`worker="${worker}"`, 'state="ready"', `host="${host.name}"`]);
      assert.equal(up?.split(' ').at(-1), '1', `${worker} on b's /metrics: ${up}`);
    }
  }
});

test('a drain issued on host a\'s supervisor is honoured by host b\'s proxy, and so is its end', async () => {
  const drain = await a.api('POST', '/api/workers/web-a-0/drain');
  assert.equal(drain.status, 202, JSON.stringify(drain.body));
  await waitForRoutedState(b, 'web-a-0', (state) => state === 'draining', 'draining');
  const drained = await pages(b);
  assert.ok(drained.every((answer) => answer.status === 200 && workerOf(answer) === 'web-b-0'), `through b while web-a-0 drains: ${summary(drained)}`);

  const ready = await a.api('POST', '/api/workers/web-a-0/ready');
  assert.equal(ready.status, 200, JSON.stringify(ready.body));
  await waitForRoutedState(b, 'web-a-0', (state) => state === 'ready', 'ready again');
  const back = await pages(b);
  assert.ok(back.some((answer) => workerOf(answer) === 'web-a-0'), `through b after the drain: ${summary(back)}`);
});

test('drains are counted site-wide: maxUnavailable across hosts, never the last ready worker', async () => {
  // clone: two workers per host, maxUnavailable 1; host b alone would have both of its own ready
  const cloneDrain = await a.api('POST', '/api/workers/clone-a-0/drain');
  assert.equal(cloneDrain.status, 202, JSON.stringify(cloneDrain.body));
  // web: one worker per host; with a's drained, b's is the site's last ready one
  const webDrain = await a.api('POST', '/api/workers/web-a-0/drain');
  assert.equal(webDrain.status, 202, JSON.stringify(webDrain.body));
  try {
    const overMax = await b.api('POST', '/api/workers/clone-b-0/drain');
    assert.equal(overMax.status, 409, `a second clone drain on the site (maxUnavailable 1): ${JSON.stringify(overMax.body)}`);
    const last = await b.api('POST', '/api/workers/web-b-0/drain');
    assert.equal(last.status, 409, `the last ready web worker of the site: ${JSON.stringify(last.body)}`);
    for (const host of [a, b]) {
      for (const worker of ['clone-b-0', 'web-b-0']) assert.equal(await routedState(host, worker), 'ready', `${worker} in ${host.name}'s proxy`);
    }
  } finally {
    for (const worker of ['clone-a-0', 'web-a-0']) {
      const ready = await a.api('POST', `/api/workers/${worker}/ready`);
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
    }
  }
  for (const host of [a, b]) {
    for (const worker of ['clone-a-0', 'web-a-0']) await waitForRoutedState(host, worker, (state) => state === 'ready', 'ready again');
  }
  const afterwards = await b.api('POST', '/api/workers/clone-b-0/drain');
  assert.equal(afterwards.status, 202, `with every drain ended, b's drain goes through: ${JSON.stringify(afterwards.body)}`);
  const undone = await b.api('POST', '/api/workers/clone-b-0/ready');
  assert.equal(undone.status, 200, JSON.stringify(undone.body));
  for (const host of [a, b]) await waitForRoutedState(host, 'clone-b-0', (state) => state === 'ready', 'ready again');
});

test('host a\'s workers killed: both proxies serve from host b\'s workers, without an error, until they are back', async () => {
  const killed = a.killWorkers();
  assert.equal(killed.length, site.workersOn('a').length, `${site.workersOn('a').join(', ')} were running`);
  await a.pm2(['stop', 'worker-web', 'worker-clone']); // PM2 would start them again at once
  try {
    for (const host of [a, b]) {
      for (const worker of site.workersOn('a')) await waitForRoutedState(host, worker, (state) => state !== 'ready', 'out of rotation');
      const answers = await pages(host);
      assert.ok(answers.every((answer) => answer.status === 200 && workerOf(answer) === 'web-b-0'), `through ${host.name}: ${summary(answers)}`);
      for (let i = 1; i <= 10; i++) {
        const clone = await cloneRequest(host, `198.51.100.${i * 7}`);
        assert.equal(clone.status, 200);
        assert.match(workerOf(clone), /^clone-b-/);
      }
    }
  } finally {
    await a.pm2(['restart', 'worker-web', 'worker-clone']);
  }
  await site.waitUntilReady(NOTICE_MS * 2);
});

test('host a cut off: host b\'s proxy takes its workers out and b\'s site view says a is gone; back when the link is', async () => {
  site.cut('a');
  try {
    for (const worker of site.workersOn('a')) await waitForRoutedState(b, worker, (state) => state !== 'ready', 'out of rotation (health checks)');
    const answers = await pages(b);
    assert.ok(answers.every((answer) => answer.status === 200 && workerOf(answer) === 'web-b-0'), `through b with a cut off: ${summary(answers)}`);
    let hosts: SiteHostView[] = [];
    await waitFor(
      async () => (hosts = (await siteView(b)).hosts).find((host) => host.name === 'a')?.up === false,
      'b\'s /api/fleet to say host a is gone',
      NOTICE_MS,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(hosts)}`);
    });
    assert.equal(hosts.find((host) => host.name === 'b')?.up, true);
    // what an operator sees on b's dashboard: the Hosts card, a gone
    const browser = await launchChromium();
    try {
      const { page } = await signedInPage(browser, b.supervisorUrl, SITE_TOKEN);
      await page.locator('#hosts tr[data-host="a"] .badge.state-down').waitFor({ timeout: 10_000 });
      assert.deepEqual((await page.locator('#hosts tr[data-host="a"] td').allTextContents()).slice(0, 3), ['a', a.address, 'gone']);
      assert.equal(await page.locator('#hosts tr[data-host="b"] .badge').textContent(), 'up');
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'dashboard-host-gone.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  } finally {
    site.reconnect('a');
  }
  await site.waitUntilReady(NOTICE_MS * 2);
  await waitFor(async () => (await siteView(b)).hosts.every((host) => host.up), 'b\'s /api/fleet to see host a again', NOTICE_MS);
});

test('Redis restarted: the site view and drains recover', async () => {
  await site.redis.stop('kill');
  await sleep(1000); // the stores see it gone
  await site.redis.start(); // empty: every announcement, report and drain state is gone with it
  const restartedAt = Date.now();
  const fresh = (entry: { up: boolean; lastSeenAt?: string | null } | undefined) => entry?.up === true && Date.parse(entry.lastSeenAt ?? '') >= restartedAt;
  let view: { hosts: SiteHostView[]; proxies: ProxyView[] } | undefined;
  await waitFor(
    async () => {
      view = await siteView(a).catch(() => undefined);
      return (
        ['a:8080', 'b:8080'].every((id) => fresh(view?.proxies.find((proxy) => proxy.id === id))) &&
        ['a', 'b'].every((name) => fresh(view?.hosts.find((host) => host.name === name)))
      );
    },
    'a\'s /api/fleet to list both proxies and both hosts up, heard from since the restart',
    NOTICE_MS,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify({ proxies: view?.proxies, hosts: view?.hosts })}`);
  });

  const drain = await a.api('POST', '/api/workers/web-a-0/drain');
  assert.equal(drain.status, 202, JSON.stringify(drain.body));
  await waitForRoutedState(b, 'web-a-0', (state) => state === 'draining', 'draining (after the Redis restart)');
  const ready = await a.api('POST', '/api/workers/web-a-0/ready');
  assert.equal(ready.status, 200, JSON.stringify(ready.body));
  await waitForRoutedState(b, 'web-a-0', (state) => state === 'ready', 'ready again (after the Redis restart)');
});
