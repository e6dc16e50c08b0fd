import { parseAddress } from '../../lib/cidr.ts';

/**
 * Failed-authentication budget per client address: a token bucket that holds `burst` attempts
 * and regains one every `refillMs`. Only failures spend from it; what an empty budget means is
 * the caller's choice (Access: wrong tokens get 429, the right one still passes).
 */
export class FailureLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst = 10,
    private readonly refillMs = 5_000,
    /** bounds memory under a flood from many addresses: the oldest buckets are forgotten */
    private readonly maxKeys = 10_000,
  ) {}

  /** Seconds until `key` may try again, or 0 when it may try now. */
  retryAfterSec(key: string, now = Date.now()): number {
    const bucket = this.refill(key, now);
    if (!bucket || bucket.tokens >= 1) return 0;
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * this.refillMs) / 1000));
  }

  fail(key: string, now = Date.now()): void {
    const bucket = this.refill(key, now) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    this.buckets.delete(key); // re-insert: Map order is then least recently failed first
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
  }

  private refill(key: string, now: number) {
    const bucket = this.buckets.get(key);
    if (!bucket) return undefined;
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) / this.refillMs);
    bucket.at = now;
    if (bucket.tokens >= this.burst) {
      this.buckets.delete(key);
      return undefined;
    }
    return bucket;
  }
}

/**
 * The budget an address spends from: IPv4 addresses one by one, IPv6 by /64 (one host commonly
 * holds a whole /64, so per-address budgets would be free to multiply there).
 */
export function budgetKey(address: string): string {
  const parsed = parseAddress(address);
  if (!parsed || parsed.kind() === 'ipv4') return parsed?.toString() ?? address;
  const prefix = (parsed.toByteArray() as number[]).slice(0, 8);
  const groups = [0, 2, 4, 6].map((i) => ((prefix[i] << 8) | prefix[i + 1]).toString(16));
  return `${groups.join(':')}::/64`;
}
