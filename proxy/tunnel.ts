import http from 'node:http';
import type { Socket } from 'node:net';
import { RESPONSE_HOP_BY_HOP } from '../lib/hop-by-hop.ts';

/**
 * A ServerResponse on a socket Node handed over as an upgrade, so that an upgrade request goes the
 * way every request goes (errors, a worker's non-101 answer relayed with backpressure) and ends
 * by closing the connection, which after an upgrade request can carry nothing else.
 */
export function responseOnUpgradeSocket(req: http.IncomingMessage, socket: Socket): http.ServerResponse {
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  // Node took its own socket listeners away for the upgrade: without 'drain', a response that
  // fills the socket would wait forever; without 'error', a client's reset would throw.
  socket.on('error', () => {});
  const drained = () => res.emit('drain');
  socket.on('drain', drained);
  res.once('finish', () => {
    socket.off('drain', drained);
    socket.destroySoon();
  });
  return res;
}

/** The 101 for the client: the worker's headers, with Connection and Upgrade as a 101 needs them, and ours. */
export function switchingProtocolsHead(proxyRes: http.IncomingMessage, extra: readonly string[]): string {
  const lines = [`HTTP/1.1 101 ${proxyRes.statusMessage || 'Switching Protocols'}`];
  const raw = proxyRes.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!RESPONSE_HOP_BY_HOP.has(raw[i].toLowerCase())) lines.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  lines.push('Connection: Upgrade', `Upgrade: ${proxyRes.headers.upgrade ?? 'websocket'}`);
  for (let i = 0; i < extra.length; i += 2) lines.push(`${extra[i]}: ${extra[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Joins client and worker sockets both ways with backpressure (pipe: an end is passed on as a
 * half-close), and closes both when either closes or errs, or when one has seen no traffic for
 * idleTimeoutMs (reads and writes both count, so a byte either way keeps both alive).
 */
export function joinSockets(client: Socket, worker: Socket, idleTimeoutMs: number): void {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.destroy();
    worker.destroy();
  };
  for (const socket of [client, worker]) {
    socket.on('error', close);
    socket.on('close', close);
    socket.setTimeout(idleTimeoutMs, close);
  }
  client.pipe(worker);
  worker.pipe(client);
}
