import { Redis } from 'ioredis';
import { withDeadline } from '../lib/deadline.ts';
import { fleetKey, signProxyAnnouncement } from '../lib/fleet-signing.ts';
import type { Logger } from '../lib/log.ts';
import { DELETE_IF_UNCHANGED, PROXIES_KEY, PROXY_HEARTBEAT_MS, type ProxyAnnouncement } from '../lib/proxy-announcement.ts';

/** A heartbeat Redis has not taken by then fails; the next one tries again (nothing queues up). */
const REDIS_COMMAND_TIMEOUT_MS = 2000;
/** How long a clean stop waits to remove its entry before giving up (the entry then ages out). */
const REMOVE_TIMEOUT_MS = 1500;

export interface ProxyAnnouncerOptions {
  redisUrl: string;
  adminToken: string;
  /** everything announced but the heartbeat's time */
  announcement: Omit<ProxyAnnouncement, 'at'>;
  log: Logger;
  heartbeatMs?: number;
}

/**
 * With REDIS_URL: keeps this proxy's signed announcement in the `switchyard:proxies` hash,
 * refreshed every heartbeat, so every supervisor on every host finds it (supervisor/proxy-directory.ts).
 * A Redis that is down costs one warning and nothing else: no heartbeat queues behind another.
 */
export class ProxyAnnouncer {
  private readonly redis: Redis;
  private readonly key: Buffer;
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> | undefined;
  /** the value of our last successful write: what a clean stop may delete */
  private lastWritten: string | undefined;
  private warned = false;
  private stopped = false;

  constructor(private readonly options: ProxyAnnouncerOptions) {
    this.key = fleetKey(options.adminToken);
    this.redis = new Redis(options.redisUrl, {
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      enableOfflineQueue: false,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 5000),
    });
    this.redis.on('error', (error: Error) => this.warnOnce(error));
    this.redis.on('ready', () => this.beat());
    this.timer = setInterval(() => this.beat(), options.heartbeatMs ?? PROXY_HEARTBEAT_MS);
    this.timer.unref();
  }

  get id(): string {
    return this.options.announcement.id;
  }

  /** Stops the heartbeat and removes our entry unless a successor has written its own; bounded in time. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    try {
      await withDeadline(this.removeOwnEntry(), REMOVE_TIMEOUT_MS, 'removing the proxy announcement');
    } catch (error) {
      this.options.log.debug({ err: (error as Error).message }, 'proxy announcer: entry not removed; it ages out');
    } finally {
      this.redis.disconnect();
    }
  }

  private async removeOwnEntry(): Promise<void> {
    await this.writing;
    if (this.lastWritten === undefined || this.redis.status !== 'ready') return;
    await this.redis.eval(DELETE_IF_UNCHANGED, 1, PROXIES_KEY, this.id, this.lastWritten);
  }

  private beat(): void {
    if (this.stopped || this.writing || this.redis.status !== 'ready') return;
    const value = signProxyAnnouncement(this.key, { ...this.options.announcement, at: Date.now() });
    this.writing = this.redis
      .hset(PROXIES_KEY, this.id, value)
      .then(
        () => {
          this.lastWritten = value;
          if (this.warned) this.options.log.info({ proxy: this.id }, 'proxy announcer: announced in Redis again');
          this.warned = false;
        },
        (error: Error) => this.warnOnce(error),
      )
      .finally(() => (this.writing = undefined));
  }

  private warnOnce(error: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.options.log.warn({ err: error.message, proxy: this.id }, 'proxy announcer: Redis unavailable; supervisors will see this proxy as down until it is back');
  }
}
