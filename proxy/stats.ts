import * as hdr from 'hdr-histogram-js';
import { Counter, Gauge, Registry } from 'prom-client';
import { CLONE_CACHE_RESULTS, CLONE_VCSES, CloneCacheCounts } from './clone-sharing/clone-cache-counts.ts';
import type { ConnectionTracker } from './connections.ts';
import { LaneHistogram } from './lane-histogram.ts';
import type { Pool } from './pool.ts';

import { CLASSES, type RequestClass } from '../lib/config.ts';

/** Stats are kept per request class: the lanes, and static files. */
const STAT_LANES = CLASSES;
type StatLane = RequestClass;

/** One lane's numbers for one minute (the unit of history). */
export interface LaneMinute {
  minute: string;
  lane: StatLane;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  queuePeak: number;
}

interface MinuteWindow {
  start: number;
  requests: number;
  errors: number;
  latencyUs: hdr.Histogram;
  queuePeak: number;
}

const MINUTE = 60_000;
const PENDING_CAPACITY = 1024;

/** what the clone spool holds now (clone-spool.ts) */
export type CloneSpoolUsage = () => { diskBytes: number; entries: number };

function newHistogram(): hdr.Histogram {
  return hdr.build({ useWebAssembly: false, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
}

/**
 * Request statistics of one proxy: Prometheus metrics (names of DESIGN.md) and, per lane, exact
 * per-minute percentiles from an HDR histogram for the dashboard and the history.
 */
export class ProxyStats {
  readonly registry = new Registry();
  /** clone sharing's requests by result and bytes served (share-stage.ts counts them) */
  readonly cloneCache = new CloneCacheCounts();
  private readonly duration: LaneHistogram<StatLane>;
  /** requests by lane and status code, counted here and handed to prom-client at scrape time */
  private readonly requestCounts = new Map<StatLane, Map<number, number>>(STAT_LANES.map((lane) => [lane, new Map()]));
  private readonly current = new Map<StatLane, MinuteWindow>();
  private readonly finished: LaneMinute[] = [];
  /** answered requests not yet counted (see record) */
  private readonly pendingLanes: StatLane[] = new Array<StatLane>(PENDING_CAPACITY).fill('page');
  private readonly pendingStatuses = new Uint16Array(PENDING_CAPACITY);
  private readonly pendingSeconds = new Float64Array(PENDING_CAPACITY);
  private readonly pendingEndedAt = new Float64Array(PENDING_CAPACITY);
  private pendingCount = 0;

  constructor(
    private pools: Pool[],
    private readonly connections: ConnectionTracker,
    private laneToPool: Partial<Record<StatLane, Pool>>,
    cloneSpoolUsage: CloneSpoolUsage = () => ({ diskBytes: 0, entries: 0 }),
  ) {
    const requestCounts = this.requestCounts;
    const flush = () => this.flush();
    new Counter({
      name: 'switchyard_requests_total',
      help: 'Requests answered, by lane and status code',
      labelNames: ['lane', 'code'],
      registers: [this.registry],
      collect() {
        flush(); // registered first, so every scrape counts the queued requests before the histogram below is read
        this.reset();
        for (const [lane, byCode] of requestCounts) for (const [code, count] of byCode) this.inc({ lane, code }, count);
      },
    });
    this.duration = new LaneHistogram(
      'switchyard_request_duration_seconds',
      'Time from request to the end of the response, by lane',
      STAT_LANES,
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    );
    this.duration.registerIn(this.registry);
    // read at each scrape: a reload changes the pool set (setPools), and a removed pool's or worker's series go
    const poolList = () => this.pools;
    new Gauge({
      name: 'switchyard_queue_depth',
      help: 'Requests waiting for a worker slot, by pool',
      labelNames: ['pool'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const pool of poolList()) this.set({ pool: pool.name }, pool.queueDepth);
      },
    });
    new Counter({
      name: 'switchyard_queue_rejections_total',
      help: 'Requests refused by the queue, by pool: 503 when full or timed out, 429 past the client\'s share (client-share)',
      labelNames: ['pool', 'reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const pool of poolList()) {
          this.inc({ pool: pool.name, reason: 'full' }, pool.stats.queueFull);
          this.inc({ pool: pool.name, reason: 'timeout' }, pool.stats.queueTimeouts);
          this.inc({ pool: pool.name, reason: 'client-share' }, pool.stats.clientShareRefused);
        }
      },
    });
    new Gauge({
      name: 'switchyard_worker_inflight',
      help: 'Requests in flight on each worker, as the proxy counts them',
      labelNames: ['worker'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const pool of poolList()) for (const upstream of pool.upstreams) this.set({ worker: upstream.name }, upstream.inflight);
      },
    });
    this.registerCloneCache(cloneSpoolUsage);
    const connectionsRef = this.connections;
    new Gauge({
      name: 'switchyard_client_connections',
      help: 'Open client connections by the class of their latest request and state',
      labelNames: ['class', 'state'],
      registers: [this.registry],
      collect() {
        for (const [requestClass, counts] of Object.entries(connectionsRef.counts().byClass)) {
          this.set({ class: requestClass, state: 'active' }, counts.active);
          this.set({ class: requestClass, state: 'idle' }, counts.idle);
        }
      },
    });
  }

  /** Clone sharing's metrics: every series present from start, at 0. */
  private registerCloneCache(usage: CloneSpoolUsage): void {
    const counts = this.cloneCache;
    new Counter({
      name: 'switchyard_clone_cache_requests_total',
      help: 'Clone-protocol requests of the clone and bot lanes, by VCS and how they were answered: miss (led a worker answer), coalesced (shared one being produced), hit (a completed one), bypass (went alone)',
      labelNames: ['vcs', 'result'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const vcs of CLONE_VCSES) for (const result of CLONE_CACHE_RESULTS) this.inc({ vcs, result }, counts.requests[vcs][result]);
      },
    });
    new Counter({
      name: 'switchyard_clone_cache_served_bytes_total',
      help: 'Body bytes sent from the clone spool to coalesced and hit requests, by VCS',
      labelNames: ['vcs'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const vcs of CLONE_VCSES) this.inc({ vcs }, counts.servedBytes[vcs]);
      },
    });
    const gauges = [
      ['switchyard_clone_cache_disk_bytes', 'Bytes of clone spool files now, answers being written and evicted ones still being read included', 'diskBytes'],
      ['switchyard_clone_cache_entries', 'Shared clone answers in the spool now, being written or completed', 'entries'],
    ] as const;
    for (const [name, help, field] of gauges) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(usage()[field]);
        },
      });
    }
  }

  /** A reload changed the pools, or which lane goes to which. */
  setPools(pools: Pool[], laneToPool: Partial<Record<StatLane, Pool>>): void {
    this.pools = pools;
    this.laneToPool = laneToPool;
  }

  /**
   * Notes one answered request. It is only queued here: the counters, histograms and minute
   * windows take it on the next flush (once a second, when the queue is full, and before any of
   * them is read), so that the request path pays for four stores instead of map lookups
   * and histogram bucketing (Envoy's thread-local stats work the same way).
   */
  record(lane: StatLane, status: number, seconds: number, endedAt = Date.now()): void {
    const index = this.pendingCount;
    this.pendingLanes[index] = lane;
    this.pendingStatuses[index] = status;
    this.pendingSeconds[index] = seconds;
    this.pendingEndedAt[index] = endedAt;
    this.pendingCount = index + 1;
    if (this.pendingCount === PENDING_CAPACITY) this.flush();
  }

  /** Takes every queued request into the counters, histograms and the current minute. */
  flush(): void {
    for (let index = 0; index < this.pendingCount; index++) {
      const lane = this.pendingLanes[index];
      const status = this.pendingStatuses[index];
      const seconds = this.pendingSeconds[index];
      const byCode = this.requestCounts.get(lane)!;
      byCode.set(status, (byCode.get(status) ?? 0) + 1);
      this.duration.observe(lane, seconds);
      const window = this.window(lane, this.pendingEndedAt[index]);
      window.requests++;
      if (status >= 500) window.errors++;
      window.latencyUs.recordValue(Math.max(1, Math.round(seconds * 1e6)));
    }
    this.pendingCount = 0;
  }

  /** Samples queue depth into the per-minute peak; call about once a second. */
  sample(now = Date.now()): void {
    this.flush();
    for (const lane of STAT_LANES) {
      const pool = this.laneToPool[lane];
      if (!pool) continue;
      const window = this.window(lane, now);
      window.queuePeak = Math.max(window.queuePeak, pool.queueDepth);
    }
  }

  /** Completed minutes (the last day's), oldest first, optionally only those after `since`. */
  finishedMinutes(since?: Date, now = Date.now()): LaneMinute[] {
    this.flush();
    for (const lane of STAT_LANES) this.window(lane, now);
    if (!since) return [...this.finished];
    const after = since.toISOString();
    return this.finished.filter((minute) => minute.minute > after);
  }

  /** Totals since start (summed from the per-code counts) and the running minute, per lane. */
  summary(now = Date.now()) {
    this.flush();
    return STAT_LANES.map((lane) => {
      let totalRequests = 0;
      let totalErrors = 0;
      for (const [code, count] of this.requestCounts.get(lane)!) {
        totalRequests += count;
        if (code >= 500) totalErrors += count;
      }
      return { lane, totalRequests, totalErrors, minute: this.describe(lane, this.window(lane, now)) };
    });
  }

  private describe(lane: StatLane, window: MinuteWindow): LaneMinute {
    const empty = window.requests === 0;
    return {
      minute: new Date(window.start).toISOString(),
      lane,
      requests: window.requests,
      errors: window.errors,
      p50Ms: empty ? 0 : window.latencyUs.getValueAtPercentile(50) / 1000,
      p99Ms: empty ? 0 : window.latencyUs.getValueAtPercentile(99) / 1000,
      queuePeak: window.queuePeak,
    };
  }

  private window(lane: StatLane, now: number): MinuteWindow {
    const start = now - (now % MINUTE);
    const window = this.current.get(lane);
    // never back to an earlier minute: a request queued just before the turn counts in the new one
    if (window && window.start >= start) return window;
    if (window && (window.requests > 0 || window.queuePeak > 0)) this.finished.push(this.describe(lane, window));
    if (this.finished.length > 24 * 60) this.finished.splice(0, this.finished.length - 24 * 60);
    const fresh = { start, requests: 0, errors: 0, latencyUs: window?.latencyUs ?? newHistogram(), queuePeak: 0 };
    fresh.latencyUs.reset();
    this.current.set(lane, fresh);
    return fresh;
  }
}
