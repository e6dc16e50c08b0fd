import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * How long a refusal waits for the rest of the request body (read and thrown away) before it is
 * sent. Answering and closing while the client is still sending makes the kernel reset the
 * connection, and the client then sees a write error instead of the refusal; a client that is
 * still sending after this long gets the refusal anyway.
 */
const DRAIN_MS = 1000;

/** A short plain-text answer (an error or refusal a VCS client shows as it is); ends the connection. */
export function sendPlainText(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent || res.destroyed) return void res.destroy();
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
    connection: 'close',
  });
  res.end(`${message}\n`);
}

/** Resolves once the request has been read to its end (the rest thrown away), or after DRAIN_MS. */
export function requestRead(req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      req.off('end', done);
      req.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, DRAIN_MS);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/** sendPlainText once the request body is out of the way: a refusal the client can read. */
export async function refuseRequest(req: IncomingMessage, res: ServerResponse, status: number, message: string): Promise<void> {
  if (!res.headersSent) await requestRead(req);
  sendPlainText(res, status, message);
}
