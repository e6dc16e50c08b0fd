import type http from 'node:http';
import { FORWARDING_HEADERS, applyForwardingHeaders, type ClientInfo } from './client-address.ts';
import { BOT_TOKEN_HEADER } from './classify.ts';
import { ConnectionList, REQUEST_HOP_BY_HOP } from '../lib/hop-by-hop.ts';

const UPGRADE_HEADERS = new Set(['connection', 'upgrade']);
/**
 * How the body is framed: kept even when the client names them in Connection, or the worker would
 * get the body unframed and read it as a request of its own (a desync).
 */
const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding']);
/**
 * Never passed on as the client sent them: hop-by-hop and forwarding headers; the bot token (a
 * CI secret meant for the proxy's classifier); Expect (Node's server has already answered 100
 * Continue to the client, and a worker's own 100 would only be swallowed). One lookup per header.
 */
const REPLACED_OR_DROPPED: ReadonlySet<string> = new Set([...REQUEST_HOP_BY_HOP, ...FORWARDING_HEADERS, BOT_TOKEN_HEADER, 'expect']);

export interface UpstreamHeaderOptions {
  /** a WebSocket handshake: Connection and Upgrade go through */
  upgrade?: boolean;
  /** the body was read whole by the proxy: it goes out with this Content-Length, unchunked */
  bufferedBodyBytes?: number;
}

/**
 * The headers a worker gets: the client's, less hop-by-hop headers (and those the client lists
 * in Connection) and less any forwarding headers, plus our trustworthy X-Forwarded-* set.
 * Built as a new object rather than by deleting keys: a delete turns V8's header object into a
 * slow dictionary, and http-proxy-3 and the upstream request read it again on every request.
 */
export function upstreamHeaders(
  incoming: http.IncomingHttpHeaders,
  client: ClientInfo,
  options: UpstreamHeaderOptions = {},
): http.IncomingHttpHeaders {
  const listed = incoming.connection === undefined ? undefined : new ConnectionList(incoming.connection);
  const reframed = options.bufferedBodyBytes !== undefined;
  const headers: http.IncomingHttpHeaders = {};
  for (const name in incoming) {
    if ((REPLACED_OR_DROPPED.has(name) || (listed?.has(name) && !FRAMING_HEADERS.has(name))) && !(options.upgrade && UPGRADE_HEADERS.has(name))) continue;
    if (reframed && FRAMING_HEADERS.has(name)) continue;
    headers[name] = incoming[name];
  }
  if (reframed) headers['content-length'] = String(options.bufferedBodyBytes);
  applyForwardingHeaders(headers, client);
  return headers;
}
