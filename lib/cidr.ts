import ipaddr from 'ipaddr.js';

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Parsed, number];

/** Parses an address, folding IPv4-mapped IPv6 (::ffff:1.2.3.4) to plain IPv4. */
export function parseAddress(address: string): Parsed | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  return ipaddr.process(address);
}

export function normalizeAddress(address: string): string {
  return parseAddress(address)?.toString() ?? address;
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

  has(address: string | undefined): boolean {
    if (!address || this.ranges.length === 0) return false;
    const parsed = parseAddress(address);
    if (!parsed) return false;
    return this.ranges.some(([base, bits]) => base.kind() === parsed.kind() && parsed.match(base, bits));
  }
}
