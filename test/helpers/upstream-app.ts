// A small HTTP app used as a worker in proxy tests: one process, routes that misbehave on demand.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { WebSocketServer } from 'ws';
import type { Socket } from 'node:net';
import { readAtRate } from './read-at-rate.ts';
import { responseOnUpgradeSocket } from '../../proxy/tunnel.ts';

const name = process.env.APP_NAME ?? `app-${process.pid}`;
let inflight = 0;
let maxInflight = 0;
let served = 0;
let resetNextReused = false;
let resets = 0;
const socketsSeen = new WeakSet<object>();
const chunk = Buffer.alloc(64 * 1024, 'x');

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://local');
  if (url.pathname === '/_worker/health') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify({ pid: process.pid, name, inflight, maxInflight, served }));
  }
  if (url.pathname === '/stats') {
    // not counted: tests read it directly while requests are in flight
    return res.end(JSON.stringify({ name, inflight, maxInflight, served, resets }));
  }
  const reused = socketsSeen.has(req.socket);
  socketsSeen.add(req.socket);
  if (resetNextReused && reused) {
    // Models a keep-alive socket the worker closed just as the proxy reused it.
    resetNextReused = false;
    resets++;
    return void req.socket.destroy();
  }
  served++;
  inflight++;
  maxInflight = Math.max(maxInflight, inflight);
  res.on('close', () => inflight--);
  res.setHeader('x-app', name);
  const ms = Number(url.searchParams.get('ms') ?? 0);
  switch (url.pathname) {
    case '/slow':
      return setTimeout(() => res.end(`slow ${name}\n`), ms);
    case '/big': {
      // Streams N bytes, honouring backpressure, and reports when the whole body was handed off.
      let left = Number(url.searchParams.get('bytes') ?? 1024 * 1024);
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('content-length', String(left));
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    case '/slow-sink': {
      // Reads the request body at about `bps` bytes a second (TCP backpressure does the rest).
      const reading = readAtRate(req, Number(url.searchParams.get('bps') ?? 1024 * 1024));
      const finish = () => {
        reading.stop();
        if (!res.headersSent) res.end(JSON.stringify({ received: reading.bytes }));
      };
      req.once('end', finish);
      req.once('close', finish);
      return;
    }
    case '/reset': {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(chunk.subarray(0, 1000));
      return setTimeout(() => req.socket.destroy(), ms || 20);
    }
    case '/hang':
      return; // never answers
    case '/drip': {
      // Headers at once, then a byte every 50 ms for `ms` (a response that takes its worker long to produce)
      res.writeHead(200, { 'content-type': 'text/plain' });
      const drip = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(drip));
      return setTimeout(() => {
        clearInterval(drip);
        res.end('\n');
      }, ms);
    }
    case '/crash':
      return process.exit(3);
    case '/echo': {
      const body: Buffer[] = [];
      req.on('data', (data: Buffer) => body.push(data));
      req.on('end', () => {
        const whole = Buffer.concat(body);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, bodyBytes: whole.length, sha256: createHash('sha256').update(whole).digest('hex') }));
      });
      return;
    }
    case '/hop-headers':
      // hop-by-hop headers of the worker's own connection, two cookies, and a chunked body
      res.setHeader('Connection', 'keep-alive, X-Conn-Private');
      res.setHeader('Keep-Alive', 'timeout=99');
      res.setHeader('X-Conn-Private', 'secret');
      res.setHeader('Proxy-Connection', 'keep-alive');
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('X-Kept', 'yes');
      res.write('chunked ');
      return setTimeout(() => res.end('body\n'), 5);
    case '/arm-reset':
      resetNextReused = true;
      return res.end('armed\n');
    default:
      res.setHeader('content-type', 'text/plain');
      return setTimeout(() => res.end(`hello from ${name}\n`), ms);
  }
});
server.keepAliveTimeout = 5000;

// WebSockets on /ws; an upgrade request to any other route gets that route's plain answer, as
// from an app that does not do WebSockets (fastify, the reference worker).
const wss = new WebSocketServer({ noServer: true });
wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`${name}: ${data}`)));
server.on('upgrade', (req, socket: Socket, head: Buffer) => {
  if (new URL(req.url ?? '/', 'http://local').pathname === '/ws') return wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  server.emit('request', req, responseOnUpgradeSocket(req, socket));
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`LISTENING ${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
