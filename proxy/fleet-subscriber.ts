import { Redis } from 'ioredis';
import { FLEET_CHANNEL, FLEET_STATE_KEY, validStates, type ProxyWorkerState } from '../lib/fleet-channel.ts';
import type { Logger } from '../lib/log.ts';

type ApplyState = (worker: string, state: ProxyWorkerState) => unknown;

/**
 * With REDIS_URL: applies the supervisor's fleet states (drains) published on `switchyard:fleet`,
 * and on (re)connect the current states from the `switchyard:fleet:state` hash, so a proxy that
 * starts or reconnects mid-drain catches up. Without the supervisor, the last states stay.
 */
export class FleetSubscriber {
  private readonly subscriber: Redis;
  private readonly reader: Redis;
  private warned = false;

  constructor(
    redisUrl: string,
    private readonly apply: ApplyState,
    private readonly log: Logger,
  ) {
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
    try {
      this.applyAll(validStates((JSON.parse(text) as { states?: unknown }).states));
    } catch (error) {
      this.log.warn({ err: error }, 'fleet subscriber: ignoring a malformed message');
    }
  }

  private async loadCurrent(): Promise<void> {
    try {
      this.applyAll(validStates(await this.reader.hgetall(FLEET_STATE_KEY)));
    } catch (error) {
      this.warnOnce(error as Error);
    }
  }

  private applyAll(states: Record<string, ProxyWorkerState>): void {
    for (const [worker, state] of Object.entries(states)) this.apply(worker, state);
  }

  private warnOnce(error: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: error.message }, 'fleet subscriber: Redis unavailable; keeping the last known fleet state');
  }
}
