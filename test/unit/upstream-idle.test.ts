import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { Upstream } from '../../proxy/upstream.ts';

// Idle worker sockets are found by the sweep alone (Upstream.closeIdleSockets): a free socket that
// was busy at the previous sweep, or wrote since, counts as idle from that sweep. Real sockets to a
// real server; the sweep's clock is passed in, so the test needs no waiting.

async function get(upstream: Upstream): Promise<Socket> {
  const req = http.get({ host: upstream.host, port: upstream.port, path: '/', agent: upstream.agent });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  res.resume();
  await once(res, 'end');
  const socket = req.socket as Socket;
  // the agent takes the socket back on the next tick
  while (!Object.values(upstream.agent.freeSockets).some((sockets) => sockets?.includes(socket))) await new Promise((resolve) => setImmediate(resolve));
  return socket;
}

test('a pooled worker socket closes one timeout after the sweep before it went idle, not before', async () => {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const upstream = new Upstream({ pool: 'web', index: 0, host: '127.0.0.1', port: (server.address() as AddressInfo).port, concurrency: 1, idleSocketTimeoutMs: 1000 });
  try {
    const t0 = 1_000_000;
    upstream.closeIdleSockets(t0);
    const socket = await get(upstream);
    upstream.closeIdleSockets(t0 + 500); // first seen idle: idle since t0 at the latest
    upstream.closeIdleSockets(t0 + 999);
    assert.equal(socket.destroyed, false, 'closed before its timeout');

    assert.equal(await get(upstream), socket, 'the idle socket was not reused');
    upstream.closeIdleSockets(t0 + 1500); // it wrote since the last sweep: idle since t0 + 999
    assert.equal(socket.destroyed, false, 'a socket in use since the last sweep was closed as idle');
    upstream.closeIdleSockets(t0 + 1998);
    assert.equal(socket.destroyed, false);
    upstream.closeIdleSockets(t0 + 1999);
    assert.equal(socket.destroyed, true, 'an idle socket outlived its timeout');
  } finally {
    upstream.close();
    server.close();
  }
});

test("a worker's agent opens at most `concurrency` connections and reuses them", async () => {
  let open = 0;
  let maxOpen = 0;
  let accepted = 0;
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => setTimeout(() => res.end('ok'), 30));
  server.on('connection', (socket: Socket) => {
    accepted++;
    maxOpen = Math.max(maxOpen, ++open);
    socket.on('close', () => open--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const upstream = new Upstream({ pool: 'web', index: 0, host: '127.0.0.1', port: (server.address() as AddressInfo).port, concurrency: 2, idleSocketTimeoutMs: 1000 });
  try {
    // More requests at once than the worker takes: the agent, not the worker, holds the rest.
    const statuses = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const req = http.get({ host: upstream.host, port: upstream.port, path: '/', agent: upstream.agent });
        const [res] = (await once(req, 'response')) as [http.IncomingMessage];
        res.resume();
        await once(res, 'end');
        return res.statusCode;
      }),
    );
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
    assert.equal(maxOpen, 2, 'connections open to the worker at once');
    assert.equal(accepted, 2, 'the two connections carried all six requests');
  } finally {
    upstream.agent.destroy();
    server.close();
  }
});
