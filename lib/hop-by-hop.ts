// Headers that describe one connection rather than the message (RFC 9110 7.6.1): a proxy answers
// for its own connections, so it drops these in both directions, with any header the message's
// Connection header names.

const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];

/** Dropped from a client's request; Proxy-Authorization is meant for us, not the worker. */
export const REQUEST_HOP_BY_HOP: ReadonlySet<string> = new Set([...CONNECTION_SPECIFIC, 'proxy-authorization']);

/** Dropped from a worker's response; Node frames the body for the client itself (Transfer-Encoding). */
export const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set([...CONNECTION_SPECIFIC, 'transfer-encoding']);

/**
 * The header names a Connection header value lists, in lower case. Usually it is one token
 * ("keep-alive"), compared directly; a list is split only when there is one.
 */
export class ConnectionList {
  private readonly single: string | undefined;
  private readonly many: Set<string> | undefined;

  constructor(value: string | undefined) {
    const lower = value?.trim().toLowerCase();
    const isList = lower?.includes(',') === true;
    this.single = isList ? undefined : lower;
    this.many = isList ? new Set(lower!.split(',').map((name) => name.trim())) : undefined;
  }

  has(name: string): boolean {
    return name === this.single || this.many?.has(name) === true;
  }
}

/**
 * The worker's response headers for the client as a flat [name, value, ...] list taken from
 * `rawHeaders`, so that repeated headers (Set-Cookie) stay separate, less the hop-by-hop ones: the
 * worker's Connection and Keep-Alive describe its socket to us, not ours to the client (Node's
 * server writes those for the client connection itself).
 */
export function clientResponseHeaders(rawHeaders: readonly string[]): string[] {
  let connection: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name.length === 10 && name.toLowerCase() === 'connection') connection = connection === undefined ? rawHeaders[i + 1] : `${connection},${rawHeaders[i + 1]}`;
  }
  const listed = new ConnectionList(connection);
  const headers: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i].toLowerCase();
    if (RESPONSE_HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    headers.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return headers;
}
