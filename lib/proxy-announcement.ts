// How a proxy tells every supervisor it exists (with REDIS_URL): one field per proxy in the
// `switchyard:proxies` hash, refreshed every PROXY_HEARTBEAT_MS, its value signed with the fleet
// key (lib/fleet-signing.ts signProxyAnnouncement). Readers judge liveness by `at`.

export const PROXIES_KEY = 'switchyard:proxies';

export const PROXY_HEARTBEAT_MS = 2000;
/** A proxy whose last heartbeat is older than this is not up (three heartbeats missed). */
export const PROXY_STALE_MS = 3 * PROXY_HEARTBEAT_MS;
/** An announcement this old is dropped from the directory and the hash (a proxy gone for good). */
export const PROXY_PRUNE_MS = 10 * 60_000;

export interface ProxyAnnouncement {
  /** `<host name>:<proxy port>`: the same across `restart-proxy`, so a replacement takes over its entry */
  id: string;
  host: string;
  /** where clients reach it: host:port */
  address: string;
  /** its control API's base URL, as the other hosts reach it */
  control: string;
  version: string;
  /** ISO time its process started */
  startedAt: string;
  pid: number;
  /** ms since the epoch of this heartbeat */
  at: number;
}

/**
 * Deletes a hash field only while it still holds the value the caller read or wrote: during
 * `restart-proxy` the successor announces the same id, and neither the retiring process nor a
 * supervisor pruning an old entry may remove a fresh one. KEYS[1] hash, ARGV[1] field, ARGV[2] value.
 */
export const DELETE_IF_UNCHANGED = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`;

const MAX_TEXT = 256;

const text = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= MAX_TEXT;

/** The announcement in `raw` when every field is there and of its type (strings bounded), else undefined. */
export function announcementOf(raw: unknown): ProxyAnnouncement | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { id, host, address, control, version, startedAt, pid, at } = raw as Record<string, unknown>;
  if (!text(id) || !text(host) || !text(address) || !text(control) || !text(version) || !text(startedAt)) return undefined;
  if (!/^https?:\/\//.test(control)) return undefined;
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0 || !Number.isSafeInteger(at)) return undefined;
  return { id, host, address, control, version, startedAt, pid: pid as number, at: at as number };
}
