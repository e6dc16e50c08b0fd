import type http from 'node:http';
import { FORWARDING_HEADERS, applyForwardingHeaders, type ClientInfo } from './client-address.ts';
import { ConnectionList, REQUEST_HOP_BY_HOP } from './hop-by-hop.ts';

const UPGRADE_HEADERS = new Set(['connection', 'upgrade']);

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
  const listed = new ConnectionList(incoming.connection);
  const headers: http.IncomingHttpHeaders = {};
  for (const name in incoming) {
    const passes = options.upgrade && UPGRADE_HEADERS.has(name);
    if (!passes && (REQUEST_HOP_BY_HOP.has(name) || listed.has(name))) continue;
    if (FORWARDING_HEADERS.has(name)) continue;
    headers[name] = incoming[name];
  }
  applyForwardingHeaders(headers, client);
  return headers;
}
