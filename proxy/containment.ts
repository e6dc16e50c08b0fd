import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../lib/log.ts';
import { sendError } from './responses.ts';

// The containment boundaries: a throw on a connection or a request ends that connection or
// answers that request; it never reaches the process. (The forwarder keeps its own boundary
// around each callback of an exchange: Forwarder.contain.)

/** For what runs on a connection outside any request: a throw closes that one socket. */
export function containSocket(log: Logger, socket: Socket, run: () => void): void {
  try {
    run();
  } catch (error) {
    log.error({ err: error, peer: socket.remoteAddress }, 'connection failed inside the proxy');
    socket.destroy();
  }
}

/** The outermost boundary of a request: a throw answers it with 502 and closes its connection. */
export function containRequest(log: Logger, req: http.IncomingMessage, res: http.ServerResponse, run: () => void): void {
  try {
    run();
  } catch (error) {
    log.error({ err: error, method: req.method, url: req.url, peer: req.socket.remoteAddress }, 'request failed inside the proxy');
    sendError(res, 502, 'the proxy failed on this request', { connection: 'close' });
  }
}
