import type { Redis } from 'ioredis';

// Site-wide "may this worker leave rotation?" on a site of several hosts. Each host's supervisor
// keeps, per pool, its ready workers in `switchyard:site:ready:<pool>` and the workers it has
// taken out (draining, restarting) in `switchyard:site:out:<pool>`, sorted sets scored by expiry
// so that a supervisor that dies stops counting within seconds. Taking a worker out is one Lua
// script: it sees every host's entries at once, so two hosts can never both take the last
// spare worker. Times are Redis's own clock (TIME), so hosts' clocks need not agree.

const readyKey = (pool: string) => `switchyard:site:ready:${pool}`;
const outKey = (pool: string) => `switchyard:site:out:${pool}`;

/** A ready entry lasts this long without a refresh (three missed heartbeats). */
export const READY_TTL_MS = 6000;
/** A lease lasts this long without a refresh: a drain whose supervisor died frees its place. */
export const LEASE_TTL_MS = 10_000;

const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: ready, out. ARGV: worker, lease ms, ready ms, maxUnavailable, then a JSON list of the
// pool's workers on the site (from the config). Only those are counted, and a ready entry only
// while its expiry is within one ready ttl: the sets are unsigned, so junk members or a far-future
// score (anyone who can write to Redis) may at worst refuse a drain, never make one possible;
// so may a worker found in the out set already (a heartbeat sent while its ask was pending).
// Returns {1, why} when the worker may leave rotation (its lease taken), {0, why} when not.
const TAKE_OUT = `
${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local names = cjson.decode(ARGV[5])
local ready, out, candidate = 0, 0, false
for _, name in ipairs(names) do
  local until_ready = redis.call('ZSCORE', KEYS[1], name)
  if until_ready and tonumber(until_ready) <= now + tonumber(ARGV[3]) then
    ready = ready + 1
    if name == ARGV[1] then candidate = true end
  end
  if redis.call('ZSCORE', KEYS[2], name) then out = out + 1 end
end
if not candidate then return {0, 'it is not ready in the site view'} end
local unavailable = math.max(out, #names - ready)
if ready < 2 then return {0, 'it is the last ready worker of its pool on the site'} end
if unavailable >= tonumber(ARGV[4]) then
  return {0, unavailable .. ' of the pool\\'s ' .. #names .. ' workers on the site are out (maxUnavailable ' .. ARGV[4] .. ')'}
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return {1, 'taken out'}
`;

// KEYS: ready, out. ARGV: ready ttl, lease ttl, then a JSON object {ready: [...], out: [...], other: [...]}
// of this host's workers of the pool: ready ones refreshed, taken-out ones' leases kept, the rest
// (down, starting) removed from both.
const HEARTBEAT = `
${NOW_MS}
local own = cjson.decode(ARGV[3])
for _, name in ipairs(own.ready) do
  redis.call('ZREM', KEYS[2], name)
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), name)
end
for _, name in ipairs(own.out) do
  redis.call('ZREM', KEYS[1], name)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), name)
end
for _, name in ipairs(own.other) do
  redis.call('ZREM', KEYS[1], name)
  redis.call('ZREM', KEYS[2], name)
end
redis.call('PEXPIRE', KEYS[1], 3600000)
redis.call('PEXPIRE', KEYS[2], 3600000)
return 1
`;

export interface OwnWorkers {
  ready: string[];
  out: string[];
  other: string[];
}

/** The site-wide leases of one site, over one Redis connection (commands bounded by its own timeouts). */
export class SiteLeases {
  constructor(private readonly redis: Redis) {}

  /** undefined when `worker` may leave rotation now (its lease is taken), else why not; `siteWorkers`: the names of every worker of the pool on the site. */
  async takeOut(pool: string, worker: string, siteWorkers: readonly string[], maxUnavailable: number): Promise<string | undefined> {
    const [ok, why] = (await this.redis.eval(TAKE_OUT, 2, readyKey(pool), outKey(pool), worker, LEASE_TTL_MS, READY_TTL_MS, maxUnavailable, JSON.stringify(siteWorkers))) as [
      number,
      string,
    ];
    return ok === 1 ? undefined : why;
  }

  /** Publishes this host's workers of a pool: what is ready, what it has out, what is neither. */
  async heartbeat(pool: string, own: OwnWorkers): Promise<void> {
    await this.redis.eval(HEARTBEAT, 2, readyKey(pool), outKey(pool), READY_TTL_MS, LEASE_TTL_MS, JSON.stringify(own));
  }
}
