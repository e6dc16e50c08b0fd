import ipaddr from 'ipaddr.js';

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Parsed, number];

/** Parses an address, folding IPv4-mapped IPv6 (::ffff:1.2.3.4) to plain IPv4. */
export function parseAddress(address: string): Parsed | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  return ipaddr.process(address);
}

const normalized = new Map<string, string>();
const MEMO_LIMIT = 10_000;

/** Canonical text of an address (memoized: the same few peers come back on every request). */
export function normalizeAddress(address: string): string {
  let text = normalized.get(address);
  if (text === undefined) {
    text = parseAddress(address)?.toString() ?? address;
    if (normalized.size >= MEMO_LIMIT) normalized.clear();
    normalized.set(address, text);
  }
  return text;
}

function parseRange(text: string): Range | undefined {
  try {
    if (!text.includes('/')) {
      const address = parseAddress(text);
      return address && [address, address.kind() === 'ipv4' ? 32 : 128];
    }
    const [address, bits] = ipaddr.parseCIDR(text);
    if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
      return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
    }
    return [address, bits];
  } catch {
    return undefined;
  }
}

export function isValidCidr(text: string): boolean {
  return parseRange(text) !== undefined;
}

/** A set of CIDR ranges, matched against client addresses. */
export class CidrSet {
  private readonly ranges: Range[];

  constructor(cidrs: readonly string[]) {
    this.ranges = cidrs.map((text) => {
      const range = parseRange(text);
      if (!range) throw new Error(`invalid CIDR: ${text}`);
      return range;
    });
  }

  get size(): number {
    return this.ranges.length;
  }

  private readonly memo = new Map<string, boolean>();

  has(address: string | undefined): boolean {
    if (!address || this.ranges.length === 0) return false;
    let member = this.memo.get(address);
    if (member === undefined) {
      const parsed = parseAddress(address);
      member = parsed !== undefined && this.ranges.some(([base, bits]) => base.kind() === parsed.kind() && parsed.match(base, bits));
      if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
      this.memo.set(address, member);
    }
    return member;
  }
}
