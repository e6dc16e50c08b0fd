import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { copyOfFixture, removeDir, run, startWorker, tempDir, type RunningWorker } from '../helpers/worker-harness.ts';
import { request } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';
import { PROJECT_ROOT } from '../../lib/config.ts';

// The reference worker behind the proxy, driven by the real git and hg clients and a page fetch.
describe('git, hg and pages through the proxy', () => {
  let web: RunningWorker;
  let clone: RunningWorker;
  let proxy: StartedProxy;
  let data: string;
  let repos: string;
  let work: string;

  before(async () => {
    ({ data, repos } = await copyOfFixture());
    work = await tempDir('switchyard-proxy-clones-');
    web = await startWorker({ data, repos });
    clone = await startWorker({ data, repos });
    proxy = await startProxy({
      pools: { web: [`127.0.0.1:${web.port}`], clone: [`127.0.0.1:${clone.port}`], bot: [`127.0.0.1:${clone.port}`] },
      config: { proxy: { static: { root: path.join(PROJECT_ROOT, 'worker', 'public') } } },
    });
  });
  after(async () => {
    await proxy.close();
    await Promise.all([web.stop(), clone.stop()]);
    await removeDir(data);
    await removeDir(work);
  });

  const served = async (worker: RunningWorker) => (await worker.health()).served;

  test('git clone (v2) and shallow clone go through the clone lane and verify clean', async () => {
    const cloneServedBefore = await served(clone);
    const webServedBefore = await served(web);
    const target = path.join(work, 'git');
    await run('git', ['-c', 'protocol.version=2', 'clone', '-q', `${proxy.url}/demo-git`, target]);
    await run('git', ['fsck', '--no-progress'], { cwd: target });
    const heads = async (dir: string) => (await run('git', [`--git-dir=${dir}`, 'rev-parse', 'HEAD'])).stdout.trim();
    assert.equal(await heads(path.join(target, '.git')), await heads(path.join(repos, 'demo-git')));
    const shallow = path.join(work, 'git-shallow');
    await run('git', ['clone', '-q', '--depth=1', `${proxy.url}/demo-git`, shallow]);
    assert.equal((await run('git', ['rev-list', '--count', 'HEAD'], { cwd: shallow })).stdout.trim(), '1');
    assert.ok((await served(clone)) > cloneServedBefore, 'the clone worker served the clone');
    assert.equal(await served(web), webServedBefore, 'no clone request reached the web pool');
  });

  test('hg clone and pull go through the clone lane and verify clean', async () => {
    const cloneServedBefore = await served(clone);
    const webServedBefore = await served(web);
    const laneTotals = () => Object.fromEntries(proxy.proxy.state().lanes.map((lane) => [lane.lane, lane.totalRequests]));
    const lanesBefore = laneTotals();
    const target = path.join(work, 'hg');
    await run('hg', ['clone', '-q', `${proxy.url}/demo-hg`, target]);
    await run('hg', ['verify', '-q'], { cwd: target });
    const tip = async (dir: string) => (await run('hg', ['log', '-r', 'tip', '-T', '{node}'], { cwd: dir })).stdout;
    assert.equal(await tip(target), await tip(path.join(repos, 'demo-hg')));
    const pulled = await run('hg', ['pull', '-q'], { cwd: target });
    assert.equal(pulled.stderr.trim(), '');
    assert.ok((await served(clone)) > cloneServedBefore, 'the clone worker served the hg clone');
    assert.equal(await served(web), webServedBefore, 'no hg request reached the web pool');
    const lanesAfter = laneTotals();
    assert.ok(lanesAfter.clone > lanesBefore.clone, 'hg requests were counted in the clone lane');
    assert.equal(lanesAfter.bot, lanesBefore.bot, 'none went to the bot lane, which shares the clone worker here');
  });

  test('a CI bot clone goes to the bot lane', async () => {
    const response = await request(`${proxy.url}/demo-git/info/refs?service=git-upload-pack`, { headers: { 'user-agent': 'git/2.39 Jenkins' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-switchyard-lane'], 'bot');
  });

  test('repo pages go to the web pool and their static assets are served by the proxy', async () => {
    const page = await request(`${proxy.url}/demo-git`, { headers: { 'sec-fetch-dest': 'document', accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.equal(page.headers['x-switchyard-lane'], 'browser');
    const assets = [...page.body.matchAll(/(?:href|src)="(\/_static\/[^"]+)"/g)].map((match) => match[1]);
    assert.ok(assets.length > 0, 'the page links static assets');
    const webServedBefore = await served(web);
    for (const asset of assets) {
      const response = await request(proxy.url + asset);
      assert.equal(response.status, 200, asset);
      assert.equal(response.headers['x-switchyard-lane'], 'static');
    }
    assert.equal(await served(web), webServedBefore, 'static assets never reached a worker');
  });
});
