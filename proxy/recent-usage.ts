const HALF_LIFE_MS = 10_000;
const MAX_CLIENTS = 10_000;

/**
 * Worker time each client has used lately, in milliseconds, halving every 10 s: what a fair queue
 * orders its clients by, so that a client whose requests are expensive waits behind clients whose
 * requests are cheap (fair by worker time, not only by request count). Bounded: past 10,000
 * clients the least recently charged is forgotten (a Map re-set on every charge is in LRU order).
 */
export class RecentUsage {
  private readonly charged = new Map<string, { ms: number; at: number }>();

  charge(client: string, ms: number, now: number): void {
    const total = this.of(client, now) + ms;
    this.charged.delete(client);
    this.charged.set(client, { ms: total, at: now });
    if (this.charged.size > MAX_CLIENTS) this.charged.delete(this.charged.keys().next().value!);
  }

  of(client: string, now: number): number {
    const entry = this.charged.get(client);
    if (!entry) return 0;
    return entry.ms * 2 ** (-(now - entry.at) / HALF_LIFE_MS);
  }
}
