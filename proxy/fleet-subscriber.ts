import { Redis } from 'ioredis';
import { FLEET_CHANNEL, FLEET_STATE_KEY, type ProxyWorkerState } from '../lib/fleet-channel.ts';
import { fleetKey, verifyFleetMessage, verifyStateEntry, type Verified } from '../lib/fleet-signing.ts';
import type { Logger } from '../lib/log.ts';
import { ThrottledLog } from '../lib/throttled-log.ts';

/** Sets a worker's state in this proxy; undefined when the proxy has no such worker. */
type ApplyState = (worker: string, state: ProxyWorkerState) => unknown;

/**
 * With REDIS_URL: applies the supervisor's fleet states (drains) published on `switchyard:fleet`,
 * and on (re)connect the current states from the `switchyard:fleet:state` hash, so a proxy that
 * starts or reconnects mid-drain catches up. Without the supervisor, the last states stay.
 *
 * Only what the supervisor signed with the admin token's fleet key, within the freshness window,
 * and newer than the last state applied to that worker is applied (a replay is never newer);
 * anything else is ignored and logged, at most one line a minute.
 */
export class FleetSubscriber {
  private readonly subscriber: Redis;
  private readonly reader: Redis;
  private readonly key: Buffer;
  /** per worker this proxy has: time of the last state applied */
  private readonly appliedAt = new Map<string, number>();
  private readonly ignored: ThrottledLog;
  private warned = false;

  constructor(
    redisUrl: string,
    adminToken: string,
    private readonly apply: ApplyState,
    private readonly log: Logger,
  ) {
    this.key = fleetKey(adminToken);
    this.ignored = new ThrottledLog(log);
    const options = { maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (attempt: number) => Math.min(attempt * 200, 5000) };
    this.subscriber = new Redis(redisUrl, options);
    this.reader = new Redis(redisUrl, options);
    for (const client of [this.subscriber, this.reader]) client.on('error', (error: Error) => this.warnOnce(error));
    this.subscriber.on('message', (_channel: string, text: string) => this.onMessage(text));
    // Subscribing on every connect also covers a Redis that was down when the proxy started.
    this.subscriber.on('ready', () => {
      this.warned = false;
      this.subscriber.subscribe(FLEET_CHANNEL).then(() => this.loadCurrent(), (error: Error) => this.warnOnce(error));
    });
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
    this.reader.disconnect();
  }

  private onMessage(text: string): void {
    const message = verifyFleetMessage(this.key, text);
    if (!this.accepted(message, 'channel')) return;
    for (const [worker, state] of Object.entries(message.value)) this.applyIfNewer(worker, state, message.at);
  }

  private async loadCurrent(): Promise<void> {
    let entries: Record<string, string>;
    try {
      entries = await this.reader.hgetall(FLEET_STATE_KEY);
    } catch (error) {
      this.warnOnce(error as Error);
      return;
    }
    for (const [worker, text] of Object.entries(entries)) {
      const entry = verifyStateEntry(this.key, worker, text);
      if (this.accepted(entry, 'state hash', worker)) this.applyIfNewer(worker, entry.value, entry.at);
    }
  }

  private accepted<T>(verified: Verified<T>, source: string, worker?: string): verified is Verified<T> & { ok: true } {
    if (!verified.ok) this.ignored.write({ source, worker, reason: verified.reason }, 'fleet subscriber: ignoring a fleet state that is not signed by the supervisor, or is stale');
    return verified.ok;
  }

  private applyIfNewer(worker: string, state: ProxyWorkerState, at: number): void {
    if (at <= (this.appliedAt.get(worker) ?? 0)) return; // the same or an older state: a replay, or the hash after its message
    if (this.apply(worker, state) !== undefined) this.appliedAt.set(worker, at);
  }

  private warnOnce(error: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: error.message }, 'fleet subscriber: Redis unavailable; keeping the last known fleet state');
  }
}
