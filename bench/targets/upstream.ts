// The upstream every benchmark target forwards to: a minimal keep-alive Node HTTP server that
// answers every request with the same small body. Prints `LISTENING <port>`.
import http from 'node:http';
import { announce } from '../lib/announce.ts';

const body = Buffer.from('{"ok":true,"message":"hello from the bench upstream"}\n');
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  req.resume();
  req.once('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.maxRequestsPerSocket = 0;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => announce(server));
