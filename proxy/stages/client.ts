import type http from 'node:http';
import type { Socket } from 'node:net';
import { type CidrSet, normalizeAddress } from '../../lib/cidr.ts';
import type { RequestClass } from '../../lib/config.ts';
import type { Classifier } from '../classify.ts';
import { type ClientInfo, connectionClientAddress, resolveClient } from '../client-address.ts';
import type { TrackedConnection } from '../connections.ts';
import { fairShareKey } from '../fair-share-key.ts';

/**
 * Stage "client": who the client is. The connection's record gives its address (the PROXY
 * protocol's, if any) and whether that is a trusted proxy, both settled when it was admitted; a
 * socket without one (already closed) is looked at afresh. X-Forwarded-For is believed only
 * behind trusted proxies (client-address.ts).
 */
export function identifyClient(req: http.IncomingMessage, trusted: CidrSet, connection: TrackedConnection | undefined): ClientInfo {
  if (connection) return resolveClient(req, trusted, connection.ip, connection.trustedPeer);
  const socket: Socket = req.socket;
  return resolveClient(req, trusted, connectionClientAddress(socket) ?? normalizeAddress(socket.remoteAddress ?? ''));
}

/**
 * Who the request counts against in its pool's fair share (fair-share-key.ts): a known bot's
 * token, a crawler's network, a client address; behind a trusted proxy that names no client, the
 * connection itself.
 */
export function fairShareOf(req: http.IncomingMessage, client: ClientInfo, requestClass: RequestClass, classifier: Classifier, trusted: CidrSet): string {
  return fairShareKey(
    client.ip,
    requestClass === 'bot' && classifier.isCrawler(req.headers),
    classifier.knownBotToken(req.headers),
    trusted.has(client.ip) ? { port: req.socket.remotePort } : undefined,
  );
}
