import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { request, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

const TOKEN = 'control-test-token-123';

describe('the proxy control API: drains, state, stats, metrics', () => {
  let apps: AppProcess[];
  let proxy: StartedProxy;
  let control: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    process.env.SWITCHYARD_ADMIN_TOKEN = TOKEN;
    apps = [await startApp('one'), await startApp('two')];
    proxy = await startProxy({ pools: { web: apps.map((app) => app.address) } });
    control = `http://127.0.0.1:${proxy.controlPort}`;
  });
  after(async () => {
    delete process.env.SWITCHYARD_ADMIN_TOKEN;
    await proxy.close();
    await Promise.all(apps.map((app) => app.stop()));
  });

  test('every route needs the admin token', async () => {
    assert.equal((await request(`${control}/state`)).status, 401);
    assert.equal((await request(`${control}/state`, { headers: { authorization: 'Bearer wrong-token-of-same-len' } })).status, 401);
    assert.equal((await request(`${control}/state`, { headers: auth })).status, 200);
  });

  test('a draining worker gets no new requests; ready brings it back', async () => {
    const drained = await request(`${control}/workers/web-0/state`, { method: 'PUT', headers: auth, body: '{"state":"draining"}' });
    assert.equal(drained.status, 200);
    assert.equal(JSON.parse(drained.body).state, 'draining');
    for (let i = 0; i < 4; i++) assert.equal((await request(`${proxy.url}/`)).headers['x-app'], 'two');
    await request(`${control}/workers/web-0/state`, { method: 'PUT', headers: auth, body: '{"state":"ready"}' });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(String((await request(`${proxy.url}/`)).headers['x-app']));
    assert.deepEqual(seen, new Set(['one', 'two']));
  });

  test("ready lifts a drain but does not overrule the proxy's own health check: a worker it cannot reach stays out", async () => {
    const web = proxy.proxy.pools.get('web')!;
    const unreachable = web.upstreams[1];
    web.setState(unreachable, 'down'); // as a failed health check or refused connect leaves it
    const answer = await request(`${control}/workers/web-1/state`, { method: 'PUT', headers: auth, body: '{"state":"ready"}' });
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).state, 'down');
    await waitFor(() => unreachable.state === 'ready', 'it answers: the next health check takes it back', 10_000);
  });

  test('bad state changes are refused clearly', async () => {
    const badState = await request(`${control}/workers/web-0/state`, { method: 'PUT', headers: auth, body: '{"state":"asleep"}' });
    assert.equal(badState.status, 400);
    const unknown = await request(`${control}/workers/web-9/state`, { method: 'PUT', headers: auth, body: '{"state":"ready"}' });
    assert.equal(unknown.status, 404);
    const notJson = await request(`${control}/workers/web-0/state`, { method: 'PUT', headers: auth, body: 'nope' });
    assert.equal(notJson.status, 400);
  });

  test('state and metrics count requests by lane and code', async () => {
    for (let i = 0; i < 3; i++) await request(`${proxy.url}/`, { headers: { 'sec-fetch-dest': 'document' } });
    const state = JSON.parse((await request(`${control}/state`, { headers: auth })).body);
    const browser = state.lanes.find((lane: { lane: string }) => lane.lane === 'browser');
    assert.ok(browser.totalRequests >= 3);
    assert.ok(browser.minute.p99Ms > 0);
    assert.equal(state.pools[0].workers.length, 2);
    const metrics = (await request(`${control}/metrics`, { headers: auth })).body;
    assert.match(metrics, /switchyard_requests_total\{lane="browser",code="200"\} [3-9]/);
    assert.match(metrics, /switchyard_request_duration_seconds_bucket\{le="[0-9.]+",lane="browser"\}/);
    assert.match(metrics, /switchyard_queue_depth\{pool="web"\} 0/);
    assert.match(metrics, /switchyard_client_connections\{class="browser",state="(idle|active)"\}/);
  });
});
