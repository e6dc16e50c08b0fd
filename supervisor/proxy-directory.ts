import { once } from 'node:events';
import { Redis } from 'ioredis';
import { fleetKey, verifyProxyAnnouncement } from '../lib/fleet-signing.ts';
import type { Logger } from '../lib/log.ts';
import { DELETE_IF_UNCHANGED, PROXIES_KEY, PROXY_HEARTBEAT_MS, PROXY_STALE_MS, type ProxyAnnouncement } from '../lib/proxy-announcement.ts';
import { ThrottledLog } from '../lib/throttled-log.ts';
import type { FleetRedisOptions } from './fleet-publisher.ts';
import { escapeLabelValue, type MetricsSource } from './metrics-merge.ts';
import { ProxyControlClient, type ProxyStateView } from './proxy-control.ts';

/** More announcements than this are ignored (logged): a site has a handful of proxies. */
export const MAX_PROXIES = 256;
/** Fields read from the hash per poll at most, valid or not. */
const MAX_FIELDS_READ = 4 * MAX_PROXIES;
const REDIS_COMMAND_TIMEOUT_MS = 2000;

/** One proxy as GET /api/fleet lists it. */
export interface ProxyView {
  id: string;
  host: string | null;
  /** where clients reach it (host:port); null for the configured proxy before it announced itself */
  address: string | null;
  /** its control API's base URL */
  control: string;
  version: string | null;
  startedAt: string | null;
  pid: number | null;
  /** its heartbeat is fresh (or it is this host's, without Redis) and its control API answered the last /state */
  up: boolean;
  /** the last heartbeat, or the last /state answer of a proxy that does not announce itself */
  lastSeenAt: string | null;
  clientConnections: number | null;
  /** requests answered per second over the last poll interval */
  reqPerSec: number | null;
  /** why its control API did not answer */
  error?: string;
}

export interface ProxyDirectoryOptions {
  /** this host's proxy from the config: always known, with Redis or without (none in some tests) */
  local?: ProxyControlClient;
  /** the id it has until it announces itself (`<host>:<proxy port>`) */
  localId: string;
  /** this supervisor's host: an announcement from it on the local control port is the local proxy */
  selfHost: string;
  /** the admin token: every discovered proxy's control API takes it */
  token: string;
  redis?: FleetRedisOptions;
  log: Logger;
  pollMs?: number;
}

interface Known {
  client: ProxyControlClient;
  local: boolean;
  announcement?: ProxyAnnouncement;
  /** the last /state: answered, and the request total and time for req/s */
  answered: boolean;
  answeredAt?: number;
  totalRequests?: number;
  clientConnections: number | null;
  reqPerSec: number | null;
  error?: string;
}

const totalRequests = (state: ProxyStateView): number =>
  (state.lanes as Array<{ totalRequests?: unknown }>).reduce((sum, lane) => sum + (typeof lane.totalRequests === 'number' ? lane.totalRequests : 0), 0);

const portOf = (url: string): string => {
  try {
    return new URL(url).port;
  } catch {
    return '';
  }
};

/**
 * Every proxy of the site, as a supervisor sees it: this host's proxy from the config, and with
 * REDIS_URL every proxy announced in the `switchyard:proxies` hash (proxy/proxy-announcer.ts),
 * read and verified every ~2 s. Each gets a control API client and is asked for its /state
 * (client connections, req/s). Bounded: at most MAX_PROXIES, and entries gone for 10 minutes are
 * dropped here and from the hash.
 */
export class ProxyDirectory {
  private readonly redis: Redis | undefined;
  private readonly key: Buffer | undefined;
  private readonly known = new Map<string, Known>();
  private readonly ignored: ThrottledLog;
  private readonly overflow: ThrottledLog;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  /** whether the last read of the hash worked: without it, heartbeats cannot be judged */
  private redisReadable = false;
  private readonly localKnown: Known | undefined;

  constructor(private readonly options: ProxyDirectoryOptions) {
    this.ignored = new ThrottledLog(options.log);
    this.overflow = new ThrottledLog(options.log);
    if (options.local) {
      this.localKnown = { client: options.local, local: true, answered: false, clientConnections: null, reqPerSec: null };
      this.known.set(options.localId, this.localKnown);
    }
    if (options.redis) {
      this.key = fleetKey(options.redis.adminToken);
      this.redis = new Redis(options.redis.url, {
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
        enableOfflineQueue: false,
        retryStrategy: (attempt: number) => Math.min(attempt * 200, 5000),
      });
      this.redis.on('error', (error: Error) => options.log.debug({ err: error.message }, 'proxy directory: Redis error'));
    }
  }

  /** this host's proxy from the config */
  get local(): ProxyControlClient | undefined {
    return this.options.local;
  }

  /** the configured proxy's id from the config (`<host>:<proxy port>`): stable, whatever it announces */
  get localId(): string {
    return this.options.localId;
  }

  start(): Promise<void> {
    this.timer = setInterval(() => void this.poll(), this.options.pollMs ?? PROXY_HEARTBEAT_MS);
    return this.poll();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    this.redis?.disconnect();
  }

  /** Reads the hash and asks every proxy for its /state (one poll at a time; a second caller waits for the running one). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  /**
   * The proxies to tell about drains and ask for in-flight counts: this host's, and every one
   * whose heartbeat is fresh (a proxy gone quiet would only hold up each publish by a timeout).
   */
  clients(now = Date.now()): ProxyControlClient[] {
    return [...this.known.values()].filter((entry) => entry.local || this.heartbeatFresh(entry, now)).map((entry) => entry.client);
  }

  /** Every known proxy, this host's first, then by id. */
  list(now = Date.now()): ProxyView[] {
    return [...this.known.entries()]
      .sort(([a, x], [b, y]) => Number(y.local) - Number(x.local) || a.localeCompare(b))
      .map(([id, entry]) => this.view(id, entry, now));
  }

  /**
   * Every known proxy's /metrics, fetched in parallel (each bounded by the control client's
   * timeout), each sample labelled `proxy="<id>"`, and `switchyard_proxy_up{proxy}`: 0 for one
   * that did not answer (or whose heartbeat is stale), whose series are then absent.
   */
  async metricSources(now = Date.now()): Promise<MetricsSource[]> {
    const scraped = await Promise.all(
      [...this.known.entries()].map(async ([id, entry]) => ({
        id,
        text: entry.local || this.heartbeatFresh(entry, now) ? await entry.client.metrics().catch(() => undefined) : undefined,
      })),
    );
    const up = [
      '# HELP switchyard_proxy_up Whether the supervisor could read this proxy\'s metrics at this scrape (1) or not (0)',
      '# TYPE switchyard_proxy_up gauge',
      ...scraped.map(({ id, text }) => `switchyard_proxy_up{proxy="${escapeLabelValue(id)}"} ${text === undefined ? 0 : 1}`),
    ].join('\n');
    return [...scraped.flatMap(({ id, text }) => (text === undefined ? [] : [{ text, labels: { proxy: id } }])), { text: up, labels: {} }];
  }

  private view(id: string, entry: Known, now: number): ProxyView {
    const announced = entry.announcement;
    const lastSeen = announced?.at ?? entry.answeredAt;
    return {
      id,
      host: announced?.host ?? (entry.local ? this.options.selfHost : null),
      address: announced?.address ?? null,
      control: announced?.control ?? entry.client.baseUrl,
      version: announced?.version ?? null,
      startedAt: announced?.startedAt ?? null,
      pid: announced?.pid ?? null,
      up: entry.answered && (entry.local || this.heartbeatFresh(entry, now)),
      lastSeenAt: lastSeen === undefined ? null : new Date(lastSeen).toISOString(),
      clientConnections: entry.clientConnections,
      reqPerSec: entry.reqPerSec,
      ...(entry.error !== undefined && { error: entry.error }),
    };
  }

  /** A heartbeat within PROXY_STALE_MS; when this supervisor cannot read Redis, its control API alone decides. */
  private heartbeatFresh(entry: Known, now: number): boolean {
    if (!entry.announcement || !this.redisReadable) return entry.local || entry.answered;
    return now - entry.announcement.at <= PROXY_STALE_MS;
  }

  private async pollOnce(): Promise<void> {
    await this.readAnnouncements();
    await Promise.all([...this.known.values()].map((entry) => this.askState(entry)));
  }

  private async readAnnouncements(): Promise<void> {
    const { redis, key } = this;
    if (!redis || !key) return;
    let fields: Array<[string, string]>;
    try {
      // commands are not queued while disconnected: the first poll waits for the connection, bounded
      if (redis.status === 'connecting' || redis.status === 'connect' || redis.status === 'wait') await once(redis, 'ready', { signal: AbortSignal.timeout(REDIS_COMMAND_TIMEOUT_MS) });
      fields = await this.readFields(redis);
      this.redisReadable = true;
    } catch (error) {
      if (this.redisReadable) this.options.log.warn({ err: (error as Error).message }, 'proxy directory: cannot read the proxies from Redis; keeping the last known');
      this.redisReadable = false;
      return;
    }
    const now = Date.now();
    const announced = new Map<string, ProxyAnnouncement>();
    for (const [id, text] of fields) {
      const verified = verifyProxyAnnouncement(key, id, text, now);
      if (verified.ok) announced.set(id, verified.value);
      else if (verified.reason === 'stale') void redis.eval(DELETE_IF_UNCHANGED, 1, PROXIES_KEY, id, text).catch(() => {});
      else this.ignored.write({ proxy: id.slice(0, 100), reason: verified.reason }, 'proxy directory: ignoring a proxy announcement not signed with the fleet key');
    }
    this.apply(announced);
  }

  /** The hash's fields, at most MAX_FIELDS_READ of them (HSCAN: a huge hash is never read whole). */
  private async readFields(redis: Redis): Promise<Array<[string, string]>> {
    const fields: Array<[string, string]> = [];
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(PROXIES_KEY, cursor, 'COUNT', 100);
      for (let i = 0; i + 1 < flat.length; i += 2) fields.push([flat[i], flat[i + 1]]);
      cursor = next;
    } while (cursor !== '0' && fields.length < MAX_FIELDS_READ);
    return fields.slice(0, MAX_FIELDS_READ);
  }

  /** Takes the verified announcements in: new proxies get a client, gone ones (not in the hash any more) are dropped. */
  private apply(announced: Map<string, ProxyAnnouncement>): void {
    const localAnnouncement = this.localKnown && [...announced.values()].find((announcement) => this.isLocal(announcement));
    if (this.localKnown) {
      // this host's proxy goes by its announced id once it has one; it is never dropped
      for (const [id, entry] of this.known) if (entry.local && id !== (localAnnouncement?.id ?? this.options.localId)) this.known.delete(id);
      this.localKnown.announcement = localAnnouncement;
      this.known.set(localAnnouncement?.id ?? this.options.localId, this.localKnown);
    }

    for (const [id, entry] of this.known) if (!entry.local && !announced.has(id)) this.known.delete(id);
    for (const [id, announcement] of announced) {
      if (announcement === localAnnouncement) continue;
      const entry = this.known.get(id);
      if (entry && entry.client.baseUrl === announcement.control) {
        entry.announcement = announcement;
        continue;
      }
      if (!entry && this.known.size >= MAX_PROXIES) {
        this.overflow.write({ proxy: id.slice(0, 100), max: MAX_PROXIES }, 'proxy directory: too many proxies announced; ignoring the rest');
        continue;
      }
      this.known.set(id, { client: new ProxyControlClient(announcement.control, this.options.token), local: false, announcement, answered: false, clientConnections: null, reqPerSec: null });
    }
  }

  /** The configured proxy's own announcement: the same control URL, or this host and the same control port (a wildcard listener announces the host's address). */
  private isLocal(announcement: ProxyAnnouncement): boolean {
    const local = this.options.local!.baseUrl;
    return announcement.control === local || (announcement.host === this.options.selfHost && portOf(announcement.control) === portOf(local));
  }

  private async askState(entry: Known): Promise<void> {
    try {
      const state = await entry.client.state();
      const now = Date.now();
      const total = totalRequests(state);
      const seconds = entry.answeredAt === undefined ? 0 : (now - entry.answeredAt) / 1000;
      // a restarted proxy counts from zero again: that interval reads as unknown, not negative
      entry.reqPerSec = entry.totalRequests !== undefined && total >= entry.totalRequests && seconds > 0 ? Math.round(((total - entry.totalRequests) / seconds) * 10) / 10 : entry.reqPerSec;
      entry.totalRequests = total;
      entry.answeredAt = now;
      entry.clientConnections = typeof (state.connections as { total?: unknown })?.total === 'number' ? (state.connections as { total: number }).total : null;
      entry.answered = true;
      entry.error = undefined;
    } catch (error) {
      entry.answered = false;
      entry.clientConnections = null;
      entry.reqPerSec = null;
      entry.error = (error as Error).name === 'TimeoutError' ? 'no answer in time' : (error as Error).message;
    }
  }
}
