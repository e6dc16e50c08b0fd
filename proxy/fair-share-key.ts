import { createHash } from 'node:crypto';
import { parseAddress } from '../lib/cidr.ts';

/**
 * Who a request counts against when a pool is shared fairly:
 * - a CI client with a known bot token: the token (a hash of it), wherever it comes from;
 * - a crawler (a bot that names itself one, without a token): its /24 (IPv4) or /48 (IPv6), since
 *   crawlers spread over neighbouring addresses (a CI farm in one subnet does not count as one);
 * - everyone else: the address, or its /56 for IPv6 (what one customer is commonly given: a /64
 *   key would give a single home hundreds of shares).
 * - a trusted proxy that names no client (no X-Forwarded-For or PROXY header: local tools, a front
 *   end that does not forward addresses): each of its connections, since it is not one client and
 *   must not get one client's share for everyone behind it.
 * Only a token the proxy knows counts: an invented one would give an attacker unlimited keys.
 */
export function fairShareKey(clientIp: string, crawler: boolean, knownBotToken: string | undefined, unnamedBehind?: { port: number | undefined }): string {
  if (knownBotToken !== undefined) return `token:${createHash('sha256').update(knownBotToken).digest('base64url').slice(0, 16)}`;
  if (unnamedBehind) return `${clientIp} connection :${unnamedBehind.port ?? 0}`;
  const memoKey = crawler ? `crawler ${clientIp}` : clientIp;
  let key = memo.get(memoKey);
  if (key === undefined) {
    key = addressKey(clientIp, crawler);
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(memoKey, key);
  }
  return key;
}

// the same few addresses come back on every request
const memo = new Map<string, string>();
const MEMO_LIMIT = 10_000;

function addressKey(clientIp: string, crawler: boolean): string {
  const address = parseAddress(clientIp);
  if (!address) return clientIp;
  if (address.kind() === 'ipv4') {
    if (!crawler) return address.toString();
    const octets = (address.toByteArray() as number[]).slice(0, 3);
    return `${octets.join('.')}.0/24`;
  }
  // a /56 is what providers commonly delegate to one customer (a /64 is one of its 256 subnets); a
  // crawler's operator holds at least a /48
  const bits = crawler ? 48 : 56;
  const bytes = (address.toByteArray() as number[]).slice(0, bits / 8);
  const groups: string[] = [];
  for (let index = 0; index < 8; index += 2) groups.push(((bytes[index] ?? 0) * 256 + (bytes[index + 1] ?? 0)).toString(16));
  return `${groups.join(':')}::/${bits}`;
}
