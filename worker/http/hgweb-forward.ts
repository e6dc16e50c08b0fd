import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import { clientResponseHeaders, ConnectionList, REQUEST_HOP_BY_HOP } from '../../lib/hop-by-hop.ts';
import { closeConnectionUnlessSmall } from './connection-reuse.ts';
import { refuseRequest } from './plain-text.ts';
import { BodyRefused } from './request-body.ts';

/** How long hgweb may take to start its answer once it has the whole request. */
export const HGWEB_HEAD_TIMEOUT_MS = 120_000;

/** Not handed on: hgweb gets its own framing and Host; `proxy` is the httpoxy hole, as for CGI. */
const NOT_FORWARDED = new Set([...REQUEST_HOP_BY_HOP, 'host', 'expect', 'proxy', 'transfer-encoding', 'content-length']);
/** hgweb's own; Node's server writes its Date, and hgweb's Server header says nothing useful. */
const NOT_RETURNED = new Set(['server', 'date']);

export interface HgwebForward {
  port: number;
  repoName: string;
  req: IncomingMessage;
  /** the request body as hgweb is to read it (see request-body.ts); undefined for none */
  body: Readable | undefined;
  res: ServerResponse;
  log: FastifyBaseLogger;
}

function hgwebRequestHeaders(req: IncomingMessage, hasBody: boolean): OutgoingHttpHeaders {
  const listed = new ConnectionList(req.headers.connection);
  const headers: OutgoingHttpHeaders = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (NOT_FORWARDED.has(name) || listed.has(name)) continue;
    const value = req.rawHeaders[i + 1];
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${String(previous)}, ${value}`;
  }
  headers.host = '127.0.0.1';
  // keep-alive asks hgweb for chunked framing, so a response it cut short is seen as cut short
  headers.connection = 'keep-alive';
  headers['content-length'] = hasBody ? req.headers['content-length'] : '0';
  return headers;
}

/**
 * Hands one vetted wire-protocol request to the worker's hgweb server and its answer back, both
 * streamed with backpressure. The response head waits until the whole body has gone to hgweb, so
 * that a body refused on the way (BodyRefused) still gets its own status; a client that goes
 * away aborts the request to hgweb, which stops there. Resolves when the exchange is over, or
 * with 'unreachable', having answered nothing, when a request without a body found no server on
 * the port (one that has just died): the caller may send it again.
 */
export function forwardToHgweb(options: HgwebForward): Promise<'done' | 'unreachable'> {
  const { req, res, log } = options;
  const started = Date.now();
  const queryIndex = req.url!.indexOf('?');
  return new Promise<'done' | 'unreachable'>((settle) => {
    const resolve = () => settle('done');
    let failed = false;
    let upstream: http.ClientRequest;
    try {
      upstream = http.request({
        host: '127.0.0.1',
        port: options.port,
        method: req.method,
        path: `/${encodeURIComponent(options.repoName)}${queryIndex === -1 ? '' : req.url!.slice(queryIndex)}`,
        headers: hgwebRequestHeaders(req, options.body !== undefined),
        agent: false,
      });
    } catch (error) {
      void refuseRequest(req, res, 400, `This request cannot be handed to Mercurial: ${(error as Error).message}`).then(resolve);
      return;
    }

    /** Ends the exchange early: the request to hgweb is aborted, the client gets `status` if it still can. */
    const failWith = (status: number, message: string) => {
      if (failed) return;
      failed = true;
      clearTimeout(headTimer);
      upstream.destroy();
      if (res.headersSent) {
        res.destroy();
        return resolve();
      }
      void refuseRequest(req, res, status, message).then(resolve);
    };
    const headTimer = setTimeout(() => {
      log.warn({ ms: Date.now() - started }, 'hgweb did not answer in time');
      failWith(504, 'Mercurial did not answer in time.');
    }, HGWEB_HEAD_TIMEOUT_MS);

    res.once('close', () => {
      if (res.writableFinished) return;
      if (!failed) log.info({ ms: Date.now() - started }, 'client went away; aborting its hgweb request');
      failed = true;
      clearTimeout(headTimer);
      upstream.destroy();
      resolve();
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (!failed && !options.body && error.code === 'ECONNREFUSED') {
        failed = true;
        clearTimeout(headTimer);
        return settle('unreachable');
      }
      if (!failed) log.warn({ err: error.message, ms: Date.now() - started }, 'the request to hgweb failed');
      failWith(502, 'The Mercurial service failed to answer; try again.');
    });

    let bodyHandedOver = Promise.resolve();
    if (options.body) {
      const body = options.body;
      body.once('error', (error) => {
        if (!(error instanceof BodyRefused)) return;
        log.info({ status: error.status, ms: Date.now() - started }, error.message);
        failWith(error.status, error.message);
      });
      bodyHandedOver = pipeline(body, upstream).catch((error: Error) => log.debug({ err: error.message }, 'request body pipe ended early'));
    } else {
      upstream.end();
    }

    upstream.once('response', (answer) => {
      clearTimeout(headTimer);
      void bodyHandedOver.then(() => {
        if (failed || res.destroyed) {
          answer.destroy();
          upstream.destroy();
          return resolve();
        }
        res.statusCode = answer.statusCode!;
        if (answer.statusMessage) res.statusMessage = answer.statusMessage;
        const headers = clientResponseHeaders(answer.rawHeaders);
        for (let i = 0; i < headers.length; i += 2) {
          if (!NOT_RETURNED.has(headers[i].toLowerCase())) res.appendHeader(headers[i], headers[i + 1]);
        }
        closeConnectionUnlessSmall(res); // a bundle must not be followed on its connection: see connection-reuse.ts
        pipeline(answer, res)
          .catch((error: Error) => log.debug({ err: error.message }, 'response pipe ended early'))
          .finally(() => {
            upstream.destroy(); // its socket is kept for nothing: one request per connection
            resolve();
          });
      });
    });
  });
}
