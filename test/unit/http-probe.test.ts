import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { probeGet } from '../../lib/http-probe.ts';

/** A real server on loopback whose handler decides how (and whether) to answer. */
async function serve(handler: http.RequestListener): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = http.createServer(handler);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const target = (port: number, timeoutMs = 300) => ({ host: '127.0.0.1', port, path: '/health', timeoutMs });

test('a probe answers with the status and, when asked, the body', async () => {
  const server = await serve((req, res) => res.writeHead(req.url === '/health' ? 200 : 404).end('{"ok":true}'));
  try {
    assert.deepEqual(await probeGet(target(server.port)), { status: 200, body: '' });
    assert.deepEqual(await probeGet(target(server.port), { readBody: true }), { status: 200, body: '{"ok":true}' });
    assert.deepEqual(await probeGet({ ...target(server.port), path: '/other' }), { status: 404, body: '' });
  } finally {
    await server.close();
  }
});

test('a worker that accepts but never answers is undefined after the deadline, not a hang', { timeout: 10_000 }, async () => {
  const server = await serve(() => {});
  try {
    const started = Date.now();
    assert.equal(await probeGet(target(server.port, 200)), undefined);
    assert.ok(Date.now() - started >= 190, 'the probe waited for its deadline');
  } finally {
    await server.close();
  }
});

test('a body that stops halfway is undefined when the body is wanted: the deadline covers the whole answer', { timeout: 10_000 }, async () => {
  const server = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('{"partial":');
  });
  try {
    assert.equal(await probeGet(target(server.port, 200), { readBody: true }), undefined);
  } finally {
    await server.close();
  }
});

test('when only the status is wanted, a body that stalls is still cut at the deadline, not left holding a socket', { timeout: 10_000 }, async () => {
  let closed: Promise<void> | undefined;
  const server = await serve((req, res) => {
    closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    res.writeHead(200, { 'content-length': '100' });
    res.write('{"partial":');
  });
  try {
    assert.deepEqual(await probeGet(target(server.port, 200)), { status: 200, body: '' });
    await closed; // the worker's side of the connection closes: the probe hung up
  } finally {
    await server.close();
  }
});

test('nothing listening is undefined at once', async () => {
  const server = await serve(() => {});
  const { port } = server;
  await server.close();
  assert.equal(await probeGet(target(port, 5000)), undefined);
});
