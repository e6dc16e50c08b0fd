// What a hostile review of the fair share (issue 18) found: each test failed on the code as
// reviewed (fbcd305) and asserts what the fair share promises. Clients come from their own
// loopback addresses, or are named by X-Forwarded-For from 127.0.0.1 (a trusted proxy by
// default), as behind a front end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { request, settle, waitFor, type SimpleResponse } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';


describe('fair share review: problems found', () => {
  let app: AppProcess;
  const proxies: StartedProxy[] = [];
  before(async () => {
    app = await startApp('review');
  });
  after(async () => {
    for (const proxy of proxies) await proxy.close().catch(() => {});
    await app.stop();
  });
  const start = async (config: Record<string, unknown>) => {
    const proxy = await startProxy({ pools: { web: [app.address] }, config });
    proxies.push(proxy);
    return proxy;
  };
  const slotsHeld = (proxy: StartedProxy) => proxy.proxy.pools.get('web')!.upstreams.reduce((sum, upstream) => sum + upstream.inflight, 0);

  test(
    'one IPv6 customer (a delegated /56: 256 of its /64s) cannot fill the queue and lock every other client out',
    async () => {
      // 127.0.0.1 is a trusted proxy by default: X-Forwarded-For names the client, as a front end would
      const proxy = await start({ pools: { web: { queue: { max: 20, timeoutMs: 4000 } } } });
      const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
      const flood = Array.from({ length: 22 }, (_, index) =>
        settle(request(`${proxy.url}/slow?ms=3000`, from(`2001:db8:0:${(0x1100 + index).toString(16)}::1`))),
      );
      try {
        // its /64s are one key (its /56): it gets its queue share (16) and 429s past it, not the whole queue
        await waitFor(() => proxy.proxy.pools.get('web')!.queueDepth === 16, 'the customer has its queue share waiting');
        const other = await request(`${proxy.url}/?ms=1`, from('198.51.100.7'));
        assert.notEqual(other.status, 503, `another client got ${other.status} (${other.body.trim()}): one /56 holds the whole queue`);
        assert.equal(proxy.proxy.state().pools[0].topClients[0].client, '2001:db8:0:1100::/56');
      } finally {
        const statuses = (await Promise.all(flood)).map((response) => response.status);
        assert.equal(statuses.filter((status) => status === 429).length, 5, 'one in flight, 16 queued, the rest refused');
      }
    },
  );

  test(
    'a client that used the pool a moment ago is not starved by a stream of newcomers: it is served before the queue timeout',
    async () => {
      // one worker, one slot; light requests from fresh addresses keep arriving a little faster than it serves them
      const proxy = await start({ pools: { web: { queue: { timeoutMs: 2500, max: 100 } } } });
      const returning = '127.0.20.1';
      assert.equal((await request(`${proxy.url}/slow?ms=200`, { localAddress: returning })).status, 200, 'the returning client was served once');
      const order: string[] = [];
      const newcomers: Array<Promise<SimpleResponse>> = [];
      let sent = 0;
      const stream = setInterval(() => {
        if (sent >= 80) return clearInterval(stream);
        const label = `new-${sent}`;
        const localAddress = `127.0.21.${++sent}`;
        newcomers.push(settle(request(`${proxy.url}/slow?ms=40`, { localAddress })).then((response) => (order.push(label), response)));
      }, 30);
      try {
        await waitFor(() => proxy.proxy.pools.get('web')!.queueDepth >= 2, 'a queue formed');
        const askedAt = Date.now();
        const firstLater = sent; // newcomers numbered from here asked after the returning client
        const second = await settle(request(`${proxy.url}/slow?ms=40`, { localAddress: returning }));
        const waited = Date.now() - askedAt;
        const servedBefore = order.filter((label) => Number(label.slice(4)) >= firstLater).length;
        assert.equal(
          second.status,
          200,
          `the returning client got ${second.status} after ${waited} ms, while ${servedBefore} requests of newcomers that asked after it were served`,
        );
      } finally {
        clearInterval(stream);
        await Promise.all(newcomers);
      }
    },
  );

  test(
    'a client is charged for a request still in flight: one holding a worker for seconds does not rank as having used nothing',
    async () => {
      // two slots, a client may hold both: a long request of G runs while G and B both wait for the other slot
      const proxy = await start({ pools: { web: { concurrency: 2, perClient: { maxInFlight: 2 } } } });
      const G = '127.0.40.1';
      const B = '127.0.40.2';
      assert.equal((await request(`${proxy.url}/slow?ms=150`, { localAddress: B })).status, 200, 'B has used 150 ms');
      const order: string[] = [];
      const send = (label: string, localAddress: string, ms: number) =>
        settle(request(`${proxy.url}/slow?ms=${ms}`, { localAddress })).then((response) => (order.push(label), response));
      const long = send('G-long', G, 2500);
      const filler = send('filler', '127.0.40.3', 1200);
      await waitFor(() => slotsHeld(proxy) === 2, 'both slots taken');
      const b = send('B', B, 10);
      await waitFor(() => proxy.proxy.pools.get('web')!.queueDepth === 1, 'B waits');
      const g = send('G-short', G, 10);
      await waitFor(() => proxy.proxy.pools.get('web')!.queueDepth === 2, 'G waits too');
      await Promise.all([long, filler, b, g]);
      // when the filler's slot frees, G has had a worker for 1.2 s, B has used 150 ms: B is next
      assert.ok(order.indexOf('B') < order.indexOf('G-short'), `served in the order ${order.join(', ')}`);
    },
  );

  test(
    'one client cannot take every WebSocket place of a pool',
    async () => {
      const proxy = await start({ pools: { web: { maxUpgraded: 4, perClient: { maxUpgraded: 2 } } } });
      const open = (localAddress: string): Promise<WebSocket | number> =>
        new Promise((resolve) => {
          const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`, { localAddress });
          socket.on('open', () => resolve(socket));
          socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          socket.on('error', () => resolve(0));
        });
      const mine: Array<WebSocket | number> = [];
      try {
        for (let i = 0; i < 4; i++) mine.push(await open('127.0.43.1'));
        assert.deepEqual(mine.map((socket) => (socket instanceof WebSocket ? 'open' : socket)), ['open', 'open', 503, 503], 'past its share of WebSocket places a client gets 503');
        const other = await open('127.0.43.2');
        if (other instanceof WebSocket) other.close();
        assert.ok(other instanceof WebSocket, `another client got ${String(other)}: one address holds all ${mine.filter((s) => s instanceof WebSocket).length} places`);
      } finally {
        for (const socket of mine) if (socket instanceof WebSocket) socket.close();
      }
    },
  );
});
