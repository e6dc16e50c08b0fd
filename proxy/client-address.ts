import type http from 'node:http';
import net from 'node:net';
import { type CidrSet, normalizeAddress } from '../lib/cidr.ts';

// Who the client is. X-Forwarded-* is believed only when the connection comes from a trusted proxy,
// and then only as far back as the chain of trusted proxies goes (nginx real_ip_recursive).

export interface ClientInfo {
  ip: string;
  proto: 'http' | 'https';
  host: string | undefined;
  /** the X-Forwarded-For value to send upstream */
  forwardedFor: string;
}

const clientAddressBySocket = new WeakMap<net.Socket, string>();

/** Records the client address a PROXY protocol header gave for this connection. */
export function setConnectionClientAddress(socket: net.Socket, address: string): void {
  clientAddressBySocket.set(socket, address);
}

export function connectionClientAddress(socket: net.Socket): string | undefined {
  return clientAddressBySocket.get(socket);
}

/** An IP address in the strict textual form (no ports, no shorthand like 127.1), normalized. */
function strictAddress(text: string): string | undefined {
  return net.isIP(text) === 0 ? undefined : normalizeAddress(text);
}

const NO_ENTRIES: readonly string[] = [];

/** All values of a header, in order, split on commas and trimmed, empty entries dropped. */
function headerList(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return NO_ENTRIES;
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/**
 * Walks the X-Forwarded-For chain from the right, starting at the (trusted) peer: each hop that is
 * a trusted proxy vouches for the entry to its left. The walk stops at the first untrusted address
 * (the client) or at an invalid entry (the last trusted address reached is then the client).
 */
function clientFromChain(chain: readonly string[], trusted: CidrSet, peer: string): string {
  let client = peer;
  for (let index = chain.length - 1; index >= 0 && trusted.has(client); index--) {
    const entry = strictAddress(chain[index]);
    if (entry === undefined) break;
    client = entry;
  }
  return client;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return headerList(value)[0];
}

/**
 * Who sent the request, from the connection's peer address and, when that peer is a trusted
 * proxy, the X-Forwarded-* headers. A caller that already knows whether the peer is trusted
 * (server.ts keeps it per connection) passes `peerTrusted` and an address already normalized.
 */
export function resolveClient(req: http.IncomingMessage, trusted: CidrSet, peerAddress: string, peerTrusted?: boolean): ClientInfo {
  const peer = peerTrusted === undefined ? normalizeAddress(peerAddress ?? '') : peerAddress;
  const host = req.headers.host;
  if (!(peerTrusted ?? trusted.has(peer))) return { ip: peer, proto: 'http', host, forwardedFor: peer };

  const chain = headerList(req.headers['x-forwarded-for']);
  const forwardedProto = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
  return {
    ip: clientFromChain(chain, trusted, peer),
    proto: forwardedProto === 'https' ? 'https' : 'http',
    host: firstValue(req.headers['x-forwarded-host']) ?? host,
    forwardedFor: chain.length === 0 ? peer : [...chain, peer].join(', '),
  };
}

// RFC 7239 Forwarded is dropped rather than rewritten: the proxy vouches only for X-Forwarded-*.
export const FORWARDING_HEADERS = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded']);

/** Replaces whatever forwarding headers the request carried with the ones the proxy vouches for. */
export function setUpstreamForwardingHeaders(
  headers: http.OutgoingHttpHeaders | http.IncomingHttpHeaders,
  info: ClientInfo,
): void {
  for (const name of Object.keys(headers)) {
    if (FORWARDING_HEADERS.has(name.toLowerCase())) delete headers[name];
  }
  applyForwardingHeaders(headers, info);
}

/** Sets our forwarding headers on an object that holds none yet. */
export function applyForwardingHeaders(headers: http.OutgoingHttpHeaders | http.IncomingHttpHeaders, info: ClientInfo): void {
  headers['x-forwarded-for'] = info.forwardedFor;
  headers['x-forwarded-proto'] = info.proto;
  if (info.host !== undefined) headers['x-forwarded-host'] = info.host;
  headers['x-real-ip'] = info.ip;
}
