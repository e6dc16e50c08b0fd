import type http from 'node:http';
import { FORWARDING_HEADERS, applyForwardingHeaders, type ClientInfo } from './client-address.ts';
import { ConnectionList, REQUEST_HOP_BY_HOP } from './hop-by-hop.ts';

const UPGRADE_HEADERS = new Set(['connection', 'upgrade']);
/**
 * How the body is framed: kept even when the client names them in Connection, or the worker would
 * get the body unframed and read it as a request of its own (a desync).
 */
const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding']);
/** never passed on as the client sent them: one lookup per header instead of two */
const REPLACED_OR_DROPPED: ReadonlySet<string> = new Set([...REQUEST_HOP_BY_HOP, ...FORWARDING_HEADERS]);

/**
 * The headers a worker gets: the client's, less hop-by-hop headers (and those the client lists
 * in Connection) and less any forwarding headers, plus our trustworthy X-Forwarded-* set.
 * Built as a new object rather than by deleting keys: a delete turns V8's header object into a
 * slow dictionary, and http-proxy-3 and the upstream request read it again on every request.
 */
export function upstreamHeaders(
  incoming: http.IncomingHttpHeaders,
  client: ClientInfo,
  options: { upgrade?: boolean } = {},
): http.IncomingHttpHeaders {
  const listed = incoming.connection === undefined ? undefined : new ConnectionList(incoming.connection);
  const headers: http.IncomingHttpHeaders = {};
  for (const name in incoming) {
    if ((REPLACED_OR_DROPPED.has(name) || (listed?.has(name) && !FRAMING_HEADERS.has(name))) && !(options.upgrade && UPGRADE_HEADERS.has(name))) continue;
    headers[name] = incoming[name];
  }
  applyForwardingHeaders(headers, client);
  return headers;
}
