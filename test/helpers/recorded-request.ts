import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readAtRate } from './read-at-rate.ts';

// A real client's request, recorded on its way to a worker and replayed byte for byte from a
// plain socket: the proxy cannot tell the replay from the client, so it shares a clone
// generation with real git/hg clients while the test reads the body at a pace of its choosing.

export interface RecordedRequest {
  method: string;
  /** path and query */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Runs `drive` against a recording forwarder in front of 127.0.0.1:targetPort and returns every
 * request it made, in order, with its body.
 */
export async function recordRequests(targetPort: number, drive: (baseUrl: string) => Promise<unknown>): Promise<RecordedRequest[]> {
  const recorded: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      recorded.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body });
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
      const forward = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers, agent: false }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await drive(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
  return recorded;
}

export interface ReplayOutcome {
  status: number;
  /** X-Switchyard-Clone-Cache of the answer */
  cache: string | undefined;
  bytes: number;
  sha256: string;
  /** the body ended as its framing said (false: cut short, reset or aborted) */
  complete: boolean;
  error?: string;
}

export interface Replay {
  /** resolves once the response headers are in */
  readonly response: Promise<http.IncomingMessage>;
  /** body bytes read so far */
  readonly bytes: number;
  readonly settled: boolean;
  /** resolves (never rejects) once the body ended, was cut or the connection failed */
  readonly outcome: Promise<ReplayOutcome>;
  /** a paced reader reads the rest as fast as it can */
  readFreely(): void;
  abort(): void;
}

/**
 * Sends `recorded` to 127.0.0.1:port on a new connection and reads the body, at bytesPerSec when
 * given (paused otherwise: TCP backpressure holds the rest at the sender), hashing what it reads.
 */
export function replay(port: number, recorded: RecordedRequest, options: { bytesPerSec?: number } = {}): Replay {
  const hash = createHash('sha256');
  let bytes = 0;
  let settled = false;
  let pacer: { stop(): void } | undefined;
  let message: http.IncomingMessage | undefined;
  const take = (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  };
  const readFreely = (res: http.IncomingMessage) => {
    pacer?.stop();
    pacer = undefined;
    res.on('data', take);
    res.resume();
  };
  const headers = { ...recorded.headers, host: `127.0.0.1:${port}` };
  const req = http.request({ host: '127.0.0.1', port, method: recorded.method, path: recorded.path, headers, agent: false });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  response.catch(() => {});
  const outcome = new Promise<ReplayOutcome>((resolve) => {
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      pacer?.stop();
      const complete = !error && message?.complete === true;
      resolve({
        status: message?.statusCode ?? 0,
        cache: message?.headers['x-switchyard-clone-cache'] as string | undefined,
        bytes,
        sha256: hash.digest('hex'),
        complete,
        error: error ?? (complete ? undefined : 'the body ended before its end'),
      });
    };
    req.once('error', (error) => finish(error.message));
    req.once('response', (res) => {
      message = res;
      res.once('end', () => finish());
      res.once('aborted', () => finish('aborted'));
      res.once('error', (error) => finish(error.message));
      res.once('close', () => finish(res.complete ? undefined : 'closed before its end'));
      if (options.bytesPerSec === undefined) readFreely(res);
      else pacer = readAtRate(res, options.bytesPerSec, take);
    });
  });
  req.end(recorded.body);
  return {
    response,
    get bytes() {
      return bytes;
    },
    get settled() {
      return settled;
    },
    outcome,
    readFreely: () => {
      if (message && !settled) readFreely(message);
    },
    abort: () => req.destroy(),
  };
}
