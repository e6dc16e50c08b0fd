import type http from 'node:http';
import type { Socket } from 'node:net';

export type ErrorStatus = 400 | 404 | 405 | 408 | 413 | 414 | 417 | 429 | 431 | 502 | 503 | 504;

/** Short, honest error responses: a status line and one line of text. */
export function sendError(
  res: http.ServerResponse,
  status: ErrorStatus,
  reason: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const body = `${status} ${reason}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** For sockets the HTTP parser gave up on (or never reached): write a raw response and close. */
export function rejectSocket(socket: Socket, status: keyof typeof STATUS_TEXT | number, reason: string, extraHeaders = ''): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${status} ${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}Connection: close\r\n\r\n${body}`,
  );
  // A peer that never reads must not keep the socket forever.
  setTimeout(() => socket.destroy(), 2000).unref();
}
