import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import { killProcessGroup, type ChildProcesses } from '../children.ts';
import { closeConnectionUnlessSmall } from './connection-reuse.ts';
import { refuseRequest } from './plain-text.ts';
import { BodyRefused } from './request-body.ts';

export interface CgiOptions {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  req: IncomingMessage;
  /** what the program reads on stdin (see request-body.ts); undefined for none */
  body: Readable | undefined;
  res: ServerResponse;
  children: ChildProcesses;
  log: FastifyBaseLogger;
}

const MAX_HEADER_BYTES = 64 * 1024;

/** Request metadata every CGI program needs. */
export function cgiBaseVariables(req: IncomingMessage): NodeJS.ProcessEnv {
  const queryIndex = req.url!.indexOf('?');
  const env: NodeJS.ProcessEnv = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method,
    QUERY_STRING: queryIndex === -1 ? '' : req.url!.slice(queryIndex + 1),
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    SERVER_NAME: (req.headers.host ?? 'localhost').replace(/:\d+$/, ''),
    SERVER_PORT: String(req.socket.localPort ?? 80),
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
  };
  if (req.headers['content-type']) env.CONTENT_TYPE = req.headers['content-type'];
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  return env;
}

function parseCgiHeaders(block: string): { status: number; reason?: string; headers: Array<[string, string]> } {
  let status = 200;
  let reason: string | undefined;
  const headers: Array<[string, string]> = [];
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') {
      const match = /^(\d{3})\s*(.*)$/.exec(value);
      if (match) [status, reason] = [Number(match[1]), match[2] || undefined];
    } else {
      headers.push([name, value]);
    }
  }
  return { status, reason, headers };
}

function headerEnd(buffer: Buffer): { end: number; bodyStart: number } | undefined {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { end: crlf, bodyStart: crlf + 4 };
  if (lf !== -1) return { end: lf, bodyStart: lf + 2 };
  return undefined;
}

/**
 * Runs a CGI program for one request. The request body is piped into its stdin and its stdout,
 * after the CGI header block, into the response; both pipes honour backpressure, so neither a
 * slow client nor a slow program makes anything buffer up here. When the client goes away
 * before the response is complete the program's whole process group is killed; so it is when
 * the body is refused on the way (BodyRefused: too large once decompressed, corrupt), and the
 * client gets the refusal's status instead of the program's answer. For that the program's
 * response head is held until the whole body has gone into its stdin (git reads its whole
 * request before it answers, though it writes its headers first).
 */
export function runCgi(options: CgiOptions): Promise<void> {
  const { req, res, log } = options;
  const child = options.children.spawn(options.command, options.args, { cwd: options.cwd, env: options.env });
  const started = Date.now();
  let failed = false;
  let settle = () => {};

  /** Ends the exchange early: the program is killed, the client gets `status` if it can still be sent. */
  const failWith = (status: number, message: string) => {
    if (failed) return;
    failed = true;
    killProcessGroup(child);
    child.stdout?.resume(); // whatever it still sends is thrown away
    void refuseRequest(req, res, status, message).then(() => settle());
  };

  res.once('close', () => {
    if (!res.writableFinished) {
      log.info({ pid: child.pid, ms: Date.now() - started }, 'client went away; killing the CGI process group');
      killProcessGroup(child);
    }
  });

  child.stdin!.on('error', () => {}); // EPIPE when the program exits without reading everything
  let bodyHandedOver = Promise.resolve();
  if (options.body) {
    const body = options.body;
    body.once('error', (error) => {
      if (!(error instanceof BodyRefused)) return;
      log.info({ pid: child.pid, status: error.status, ms: Date.now() - started }, error.message);
      failWith(error.status, error.message);
    });
    bodyHandedOver = pipeline(body, child.stdin!).catch((error: Error) => log.debug({ err: error.message }, 'request body pipe ended early'));
  } else {
    child.stdin!.end();
  }

  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString('utf8');
  });

  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      log.error({ err: error.message, command: options.command }, 'cannot start CGI program');
      resolve();
    });
    child.once('close', (code, signal) => {
      if (stderr.trim() || (code !== 0 && res.writableFinished === false && !res.destroyed)) {
        log.warn({ code, signal, stderr: stderr.trim().slice(0, 2000) }, 'CGI program stderr');
      }
      resolve();
    });
  });

  const responded = new Promise<void>((resolve) => {
    settle = resolve;
    const chunks: Buffer[] = [];
    let size = 0;
    const stdout = child.stdout!;
    const onData = (chunk: Buffer) => {
      if (failed) return;
      chunks.push(chunk);
      size += chunk.length;
      const buffered = Buffer.concat(chunks);
      const found = headerEnd(buffered);
      if (!found) {
        if (size > MAX_HEADER_BYTES) {
          stdout.off('data', onData);
          failWith(502, 'the backend sent an oversized header block');
        }
        return;
      }
      stdout.off('data', onData);
      stdout.off('end', onEndBeforeHeaders);
      stdout.pause();
      // git http-backend sends its headers before it reads the request: the head waits until the
      // whole body has gone in, so that a body refused on the way still gets its own status
      void bodyHandedOver.then(() => forward(buffered, found));
    };
    const forward = (buffered: Buffer, found: { end: number; bodyStart: number }) => {
      if (failed) return;
      const { status, reason, headers } = parseCgiHeaders(buffered.subarray(0, found.end).toString('latin1'));
      if (res.destroyed) {
        stdout.resume();
        return resolve();
      }
      res.statusCode = status;
      if (reason) res.statusMessage = reason;
      for (const [name, value] of headers) res.appendHeader(name, value);
      closeConnectionUnlessSmall(res); // a pack or bundle must not be followed on its connection: see connection-reuse.ts
      const rest = buffered.subarray(found.bodyStart);
      if (rest.length > 0) res.write(rest);
      pipeline(stdout, res)
        .catch((error: Error) => log.debug({ err: error.message }, 'response pipe ended early'))
        .finally(resolve);
    };
    const onEndBeforeHeaders = () => {
      stdout.off('data', onData);
      failWith(502, 'the backend ended without a response');
    };
    stdout.on('data', onData);
    stdout.once('end', onEndBeforeHeaders);
  });

  return Promise.all([exited, responded]).then(() => undefined);
}
