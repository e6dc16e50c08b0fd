// The baseline forwarder: http-proxy-3 in a plain http.createServer, keep-alive agent of 64
// sockets, nothing else. Usage: bare-http-proxy.ts <upstream host:port>. Prints `LISTENING <port>`.
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';
import { announce } from '../lib/announce.ts';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: bare-http-proxy.ts <host:port>');

const proxy = createProxyServer({
  target: `http://${upstream}`,
  xfwd: true,
  agent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
});
proxy.on('error', (_error, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
  else res.destroy();
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
