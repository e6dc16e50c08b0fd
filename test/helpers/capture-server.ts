// A real HTTP server on 127.0.0.1:0 that records every request (method, url, headers, peer) and
// answers well enough for real clients to carry on:
//   /<git repo>/...        git smart HTTP through `git http-backend` run as a CGI
//   /<hg prefix>/...       forwarded to a real `hg serve` (hgweb) for the hg repo
//   /page                  an HTML page with a stylesheet, an image and a fetch() API call
//   /_static/app.css, /_static/logo.png, /api/data, anything else 404
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface CapturedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** the socket peer, as the proxy would see it without trusted proxies */
  clientIp: string;
}

export interface CaptureOptions {
  /** directory whose subdirectories are git repositories served at /<name> */
  gitRoot?: string;
  /** a running `hg serve --prefix <prefix>` to forward /<prefix>/... to */
  hg?: HgServe;
  env?: Record<string, string>;
}

export interface CaptureServer {
  port: number;
  baseUrl: string;
  readonly requests: CapturedRequest[];
  /** requests recorded since a mark: `const mark = server.mark(); ...; server.since(mark)` */
  mark(): number;
  since(mark: number): CapturedRequest[];
  close(): Promise<void>;
}

// A 1x1 transparent GIF.
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>capture</title>
<link rel="stylesheet" href="/_static/app.css">
<link rel="icon" href="data:,">
</head><body>
<h1>capture</h1>
<img src="/_static/logo.png" alt="logo">
<script>fetch('/api/data', { headers: { accept: 'application/json' } }).then((r) => r.json()).then((d) => { document.body.dataset.api = d.ok; });</script>
</body></html>`;

function headerEnd(buffer: Buffer): { at: number; length: number } | undefined {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { at: crlf, length: 4 };
  if (lf >= 0) return { at: lf, length: 2 };
  return undefined;
}

/** Runs `git http-backend` as a CGI script for one request, streaming both bodies. */
function gitHttpBackend(root: string, req: IncomingMessage, res: ServerResponse, env: Record<string, string>): void {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const pathInfo = decodeURIComponent(mark < 0 ? url : url.slice(0, mark));
  const cgiEnv: Record<string, string> = {
    ...env,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: pathInfo,
    QUERY_STRING: mark < 0 ? '' : url.slice(mark + 1),
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
  };
  if (req.headers['content-type']) cgiEnv.CONTENT_TYPE = req.headers['content-type'];
  if (req.headers['content-length']) cgiEnv.CONTENT_LENGTH = req.headers['content-length'];
  if (req.headers['content-encoding']) cgiEnv.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
  if (req.headers['git-protocol']) cgiEnv.HTTP_GIT_PROTOCOL = String(req.headers['git-protocol']);
  const child = spawn('git', ['http-backend'], { env: cgiEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  const killTimer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  child.on('close', () => clearTimeout(killTimer));
  child.on('error', () => {
    if (!res.headersSent) res.writeHead(500).end('cannot run git http-backend');
  });
  child.stdin.on('error', () => {});
  req.pipe(child.stdin);
  let head: Buffer | undefined = Buffer.alloc(0);
  child.stdout.on('data', (chunk: Buffer) => {
    if (!head) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (!end) return;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end.at).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    const rest = head.subarray(end.at + end.length);
    head = undefined;
    if (rest.length > 0) res.write(rest);
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('end', () => {
    if (head && !res.headersSent) res.writeHead(502).end(`git http-backend gave no headers: ${stderr}`);
    else res.end();
  });
}

function forward(target: { host: string; port: number }, req: IncomingMessage, res: ServerResponse): void {
  const upstream = http.request(
    { host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers, timeout: 20_000 },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('timeout', () => upstream.destroy(new Error('hg serve timed out')));
  upstream.on('error', (error) => {
    if (!res.headersSent) res.writeHead(502).end(String(error));
    else res.destroy();
  });
  req.pipe(upstream);
}

export async function startCaptureServer(options: CaptureOptions = {}): Promise<CaptureServer> {
  const requests: CapturedRequest[] = [];
  const env = options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  // The image is held until the page's fetch() arrives, so Chromium's load event (and with it
  // --dump-dom's exit) cannot come before the API call reached us.
  let apiSeen: () => void = () => {};
  let apiArrived = new Promise<void>((resolve) => (apiSeen = resolve));

  const server = http.createServer((req, res) => {
    requests.push({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: { ...req.headers },
      clientIp: req.socket.remoteAddress ?? '',
    });
    const url = req.url ?? '/';
    const pathname = url.split('?')[0];
    const firstSegment = pathname.split('/')[1] ?? '';
    if (options.hg && firstSegment === options.hg.prefix) {
      forward({ host: '127.0.0.1', port: options.hg.port }, req, res);
      return;
    }
    if (options.gitRoot && firstSegment && !firstSegment.startsWith('.') && existsSync(path.join(options.gitRoot, firstSegment))) {
      gitHttpBackend(options.gitRoot, req, res, env);
      return;
    }
    req.resume();
    switch (pathname) {
      case '/page':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE);
        return;
      case '/_static/app.css':
        res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'no-store' }).end('h1 { color: teal; }\n');
        return;
      case '/_static/logo.png': {
        const timer = setTimeout(() => apiSeen(), 3000);
        void apiArrived.then(() => {
          clearTimeout(timer);
          res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(PIXEL);
        });
        return;
      }
      case '/api/data':
        apiSeen();
        apiArrived = Promise.resolve();
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"ok":"yes"}');
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    mark: () => requests.length,
    since: (mark) => requests.slice(mark),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface HgServe {
  port: number;
  prefix: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `hg serve` (real hgweb) for one repository under /<prefix>/ on a free loopback port. */
export function startHgServe(repo: string, prefix: string, env: Record<string, string>, timeoutMs = 15_000): Promise<HgServe> {
  return new Promise((resolve, reject) => {
    const child = spawn('hg', ['serve', '-R', repo, '-a', '127.0.0.1', '-p', '0', '--prefix', prefix], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const stop = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGKILL');
      });
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`hg serve did not start within ${timeoutMs} ms: ${output}`));
    }, timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /bound to [^:]+:(\d+)/.exec(output) ?? /listening at http:\/\/[^:/]+:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ port: Number(match[1]), prefix, child, stop });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hg serve exited with ${code}: ${output}`));
    });
  });
}
