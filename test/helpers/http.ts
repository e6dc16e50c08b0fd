import http from 'node:http';
import net from 'node:net';

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with node:http (no browser-like headers), buffered. */
export function request(
  url: string,
  options: http.RequestOptions & { body?: string | Buffer; timeoutMs?: number } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const { body, timeoutMs = 15_000, ...rest } = options;
    const req = http.request(url, { agent: false, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Opens a fresh connection, lets `drive` write to it (at once or over time), and resolves with
 * everything the server sent until it closed (or until timeoutMs).
 */
export function rawConversation(
  port: number,
  drive: (socket: net.Socket) => void,
  options: { timeoutMs?: number; localAddress?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, options.timeoutMs ?? 5000);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(error);
    });
    drive(socket);
  });
}

/** Writes raw bytes on a fresh connection and returns everything the server sent until it closed. */
export function rawExchange(port: number, payload: string | Buffer, options: { timeoutMs?: number; localAddress?: string } = {}): Promise<string> {
  return rawConversation(port, (socket) => socket.write(payload), options);
}

export function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the predicate holds; throws with the message after the deadline. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, message: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting: ${message}`);
}

/** Opens a keep-alive connection, sends one request, and resolves once the response has fully arrived. */
export function openKeepAlive(port: number, path: string, headers: Record<string, string> = {}, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let received = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const headerEnd = received.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(received.slice(0, headerEnd))?.[1] ?? 0);
      if (received.length >= headerEnd + 4 + length) {
        socket.removeAllListeners('data');
        socket.removeListener('error', reject);
        socket.on('error', () => {});
        resolve(socket);
      }
    });
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`);
  });
}

export function isClosed(socket: net.Socket): boolean {
  return socket.destroyed || socket.readyState === 'closed' || !socket.readable;
}

/** Resolves with how the request ended, never rejects (status 0 and the error's message when it failed). */
export const settle = (promise: Promise<SimpleResponse>): Promise<SimpleResponse> =>
  promise.catch((error: Error) => ({ status: 0, headers: {}, body: error.message }) as SimpleResponse);

/** A connection that sends a GET and reads nothing (until resumed). */
export function neverReads(port: number, path: string, localAddress: string): net.Socket {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
  socket.pause();
  return socket;
}
