import type { FleetEvent } from '../history/types.ts';
import type { Supervisor } from '../supervisor.ts';
import { Ring } from './ring.ts';
import { eventView, laneViews, liveView, sampleOf, type EventView, type LaneRouting, type LaneView, type LiveView, type ProxyLiveState, type Sample, type SeriesKeys } from './views.ts';

export interface LiveStateOptions {
  sampleMs: number;
  /** how much of the past the charts keep in memory; older points come from the history store */
  windowMs: number;
  recentEvents: number;
}

export const DEFAULT_LIVE_OPTIONS: LiveStateOptions = { sampleMs: 1000, windowMs: 15 * 60_000, recentEvents: 200 };

export interface SnapshotMessage {
  type: 'snapshot';
  live: LiveView;
  keys: SeriesKeys;
  samples: Sample[];
  events: EventView[];
  /** how far back the live charts reach */
  windowMs: number;
  cursor: Cursor;
}

export interface UpdateMessage {
  type: 'update';
  live: LiveView;
  samples: Sample[];
  events: EventView[];
  cursor: Cursor;
}

/** Where a client is: the last sample, event and live view it was sent. */
export interface Cursor {
  sample: number;
  event: number;
  live: number;
}

/**
 * The dashboard's model: samples the fleet and the first proxy's /state every `sampleMs` into a
 * ring of chart points, and keeps the recent fleet events. `cursor()` moves whenever there is
 * something new to push.
 */
export class LiveState {
  readonly options: LiveStateOptions;
  keys: SeriesKeys;
  /** the last sample taken with the previous keys: a client at or before it needs a new snapshot */
  private keysChangedAt = 0;
  private readonly samples: Ring<Sample>;
  private events: Ring<EventView>;
  private live: LiveView;
  private liveSeq = 0;
  private lanes: LaneView[] = [];
  private previousProxy: { state: ProxyLiveState; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  private readonly onEvent = (event: FleetEvent) => this.addEvent(event);
  // A worker's state shows at once, not only with the next sample: a drain can be over in a second.
  private readonly onWorkerState = () => this.refreshLive();

  constructor(
    private readonly supervisor: Supervisor,
    options: Partial<LiveStateOptions> = {},
  ) {
    this.options = { ...DEFAULT_LIVE_OPTIONS, ...options };
    this.keys = this.currentKeys();
    this.samples = new Ring(Math.ceil(this.options.windowMs / this.options.sampleMs));
    this.events = new Ring(this.options.recentEvents);
    this.live = liveView(supervisor.snapshot(), [], undefined, Date.now());
  }

  async start(): Promise<void> {
    this.supervisor.events.on('event', this.onEvent);
    this.supervisor.fleet.on('state', this.onWorkerState);
    // What happened before we listened (the supervisor's own start, or history from before a restart).
    const { events } = await this.supervisor.events.since(undefined, this.options.recentEvents).catch(() => ({ events: [] as FleetEvent[] }));
    const live = this.events.all();
    const earlier = events.filter((event) => live.length === 0 || event.at.getTime() < Date.parse(live[0].at)).map((event) => eventView(event, 0));
    // No client is connected before start() resolves, so renumbering is safe.
    this.events = new Ring(this.options.recentEvents);
    for (const event of [...earlier, ...live]) this.pushEvent(event);
    await this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.sampleMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.supervisor.events.off('event', this.onEvent);
    this.supervisor.fleet.off('state', this.onWorkerState);
  }

  snapshot(): SnapshotMessage {
    return {
      type: 'snapshot',
      live: this.live,
      keys: this.keys,
      samples: this.samples.all(),
      events: this.events.all(),
      windowMs: this.options.windowMs,
      cursor: this.cursor(),
    };
  }

  /** What a client at `cursor` has not seen, or undefined when it fell too far behind for a delta (or its series changed). */
  updateSince(cursor: Cursor): UpdateMessage | undefined {
    if (cursor.sample <= this.keysChangedAt) return undefined;
    const samples = this.samples.after(cursor.sample);
    const events = this.events.after(cursor.event);
    if (!samples || !events) return undefined;
    return { type: 'update', live: this.live, samples, events, cursor: this.cursor() };
  }

  cursor(): Cursor {
    return { sample: this.samples.latestSeq, event: this.events.latestSeq, live: this.liveSeq };
  }

  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const proxy = await this.proxyState();
      const now = Date.now();
      const seconds = this.previousProxy ? (now - this.previousProxy.at) / 1000 : 0;
      this.lanes = laneViews(proxy, this.previousProxy?.state, seconds, this.routing());
      this.previousProxy = proxy ? { state: proxy, at: now } : undefined;
      this.refreshLive(now);
      this.refreshKeys();
      this.samples.push(sampleOf(this.live, this.keys, proxy, now));
    } finally {
      this.sampling = false;
    }
  }

  private currentKeys(): SeriesKeys {
    const { config, fleet } = this.supervisor;
    return {
      lanes: ['static', ...Object.keys(config.lanes)],
      pools: Object.keys(config.pools),
      workers: fleet.all().map((worker) => worker.name),
    };
  }

  /** A reload that adds or removes pools or workers: the charts' series follow, and the points so far keep theirs. */
  private refreshKeys(): void {
    const next = this.currentKeys();
    if (JSON.stringify(next) === JSON.stringify(this.keys)) return;
    const previous = this.keys;
    const pick = <T>(names: string[], before: string[], values: T[], missing: T) =>
      names.map((name) => (before.includes(name) ? values[before.indexOf(name)] : missing));
    this.samples.update((sample) => ({
      ...sample,
      rps: pick(next.lanes, previous.lanes, sample.rps, 0),
      p99: pick(next.lanes, previous.lanes, sample.p99, 0),
      queue: pick(next.pools, previous.pools, sample.queue, 0),
      rss: pick<number | null>(next.workers, previous.workers, sample.rss, null),
    }));
    this.keys = next;
    this.keysChangedAt = this.samples.latestSeq;
  }

  private async proxyState(): Promise<ProxyLiveState | undefined> {
    const proxy = this.supervisor.proxyDirectory.local;
    if (!proxy) return undefined;
    try {
      return (await proxy.state()) as unknown as ProxyLiveState;
    } catch {
      return undefined;
    }
  }

  private refreshLive(now = Date.now()): void {
    this.live = liveView(this.supervisor.snapshot(), this.lanes, this.previousProxy?.state, now);
    this.liveSeq++;
  }

  private routing(): LaneRouting {
    const { lanes, pools } = this.supervisor.config;
    return {
      laneToPool: Object.fromEntries(Object.entries(lanes).map(([lane, config]) => [lane, config.pool])),
      concurrency: Object.fromEntries(Object.entries(pools).map(([pool, config]) => [pool, config.concurrency])),
    };
  }

  private addEvent(event: FleetEvent): void {
    this.pushEvent(eventView(event, 0));
  }

  private pushEvent(event: EventView): void {
    this.events.push({ ...event, seq: this.events.latestSeq + 1 });
  }
}
