import { z } from 'zod';
import { isValidCidr } from './cidr.ts';

// The shape of conf/switchyard.yaml. Every key has a default, so an empty file is a valid config;
// unknown keys are errors (a typo must not silently fall back to a default).

const MiB = 1024 * 1024;
const ms = (def: number) => z.number().int().min(0).default(def);
const positiveInt = (def: number) => z.number().int().min(1).default(def);
const cidr = z.string().refine(isValidCidr, { message: 'expected an IP address or CIDR such as 10.0.0.0/8 or ::1/128' });
const regexSource = z.string().refine(
  (source) => {
    try {
      new RegExp(source, 'i');
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected a valid regular expression' },
);

export const LANES = ['browser', 'page', 'clone', 'bot'] as const;
export type Lane = (typeof LANES)[number];
export const CLASSES = ['static', ...LANES] as const;
export type RequestClass = (typeof CLASSES)[number];
export const BALANCERS = ['round-robin', 'ip-hash', 'least-outstanding'] as const;
export type BalancerName = (typeof BALANCERS)[number];
export const ACCESS_LOG_FORMATS = ['combined', 'json'] as const;
export type AccessLogFormat = (typeof ACCESS_LOG_FORMATS)[number];

// One condition of a classification rule. All fields given must match (AND).
const matchSchema = z.strictObject({
  method: z.array(z.string().toUpperCase()).optional(),
  path: regexSource.optional(),
  pathPrefix: z.string().optional(),
  query: z.record(z.string(), regexSource).optional(),
  headers: z.record(z.string().toLowerCase(), regexSource).optional(),
  userAgent: regexSource.optional(),
  cidrs: z.array(cidr).optional(),
  /** client IP is in bots.cidrs */
  botCidr: z.boolean().optional(),
  /** UA matches one of bots.userAgents or bots.crawlerUserAgents */
  botUserAgent: z.boolean().optional(),
  /** X-Switchyard-Bot-Token equals one of bots.tokens */
  botToken: z.boolean().optional(),
});
export type MatchSpec = z.infer<typeof matchSchema>;

const ruleSchema = z.strictObject({
  class: z.enum(LANES),
  /** the rule matches when any entry matches */
  any: z.array(matchSchema).min(1),
});
export type ClassifyRule = z.infer<typeof ruleSchema>;

const HG_COMMANDS =
  'capabilities|batch|getbundle|lookup|heads|branchmap|between|changegroup|changegroupsubset|listkeys|known|' +
  'clonebundles|clonebundles_manifest|stream_out|unbundle|pushkey|debugwireargs|protocaps|narrow_widen';

export const DEFAULT_RULES: ClassifyRule[] = [
  { class: 'bot', any: [{ botCidr: true }, { botUserAgent: true }, { botToken: true }] },
  {
    class: 'clone',
    any: [
      { path: '/info/refs$', query: { service: '^git-(upload|receive)-pack$' } },
      { method: ['POST'], path: '/git-(upload|receive)-pack$' },
      { headers: { 'content-type': '^application/x-git-' } },
      { query: { cmd: `^(${HG_COMMANDS})$` } },
      { headers: { 'content-type': '^application/mercurial-' } },
      { headers: { accept: '^application/mercurial-' } },
      { userAgent: '^(git|mercurial)/' },
    ],
  },
  {
    class: 'browser',
    any: [
      { headers: { 'sec-fetch-dest': '.' } },
      { userAgent: '^Mozilla/', headers: { accept: 'text/html' } },
    ],
  },
];

/** Search engines and other crawlers that say who they are: the bot lane keeps them off the browsers' workers. */
const CRAWLER_USER_AGENTS = [
  'Googlebot', 'bingbot', 'Slurp', 'DuckDuckBot', 'Baiduspider', 'YandexBot', 'Applebot', 'AhrefsBot', 'SemrushBot',
  'MJ12bot', 'DotBot', 'PetalBot', 'GPTBot', 'ClaudeBot', 'CCBot', 'Bytespider', 'facebookexternalhit', '\\bcrawler\\b', '\\bspider\\b',
];

const clientPolicySchema = z.strictObject({
  /** close a keep-alive connection idle this long */
  idleTimeoutMs: ms(5000),
  /** close the connection after this many requests (0 = unlimited) */
  maxRequestsPerSocket: z.number().int().min(0).default(100),
  /** the whole request (headers and body) must arrive within this time; 408 otherwise */
  requestTimeoutMs: ms(60_000),
  /**
   * a request body is read up to this many bytes before the request takes a worker slot (memory,
   * then a temp file); a body that ends within it reaches the worker whole, a longer one (a push)
   * streams on after it. 0 = stream every body as it arrives
   */
  bodyBufferBytes: z.number().int().min(0).default(16 * 1024 * 1024),
});
export type ClientPolicy = z.infer<typeof clientPolicySchema>;

/** Each lane's defaults: the one list to extend when a lane is added (with LANES above). */
export const LANE_DEFAULTS = {
  browser: { pool: 'web', balance: 'round-robin', priority: 0, responseTimeoutMs: 30_000, spoolBytes: 64 * MiB },
  page: { pool: 'web', balance: 'round-robin', priority: 1, responseTimeoutMs: 30_000, spoolBytes: 64 * MiB },
  clone: { pool: 'clone', balance: 'ip-hash', priority: 0, responseTimeoutMs: 1_800_000, spoolBytes: 16 * MiB },
  bot: { pool: 'bot', balance: 'least-outstanding', priority: 0, responseTimeoutMs: 1_800_000, spoolBytes: 16 * MiB },
} as const satisfies Record<Lane, { pool: string; balance: BalancerName; priority: number; responseTimeoutMs: number; spoolBytes: number }>;

const laneSchema = (defaults: { pool: string; balance: BalancerName; priority: number; responseTimeoutMs: number; spoolBytes: number }) =>
  z
    .strictObject({
      pool: z.string().min(1).default(defaults.pool),
      balance: z.enum(BALANCERS).default(defaults.balance),
      /** lower runs first when a pool's queue is served */
      priority: z.number().int().min(0).default(defaults.priority),
      /**
       * the worker must produce its whole response within this time of getting the request (0 =
       * no limit): 504 before its headers, a cut response after. Bounds what one request costs.
       */
      responseTimeoutMs: ms(defaults.responseTimeoutMs),
      /**
       * of a response, this much may wait in a temp file for a client slower than its worker, so
       * the worker is freed at its own speed; past it the response streams at the client's pace
       */
      spoolBytes: z.number().int().min(0).default(defaults.spoolBytes),
    })
    .prefault({});
export type LaneConfig = z.infer<ReturnType<typeof laneSchema>>;

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/, { message: 'expected host:port, e.g. 127.0.0.1:9100' })
  .refine((target) => {
    const port = Number(target.slice(target.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'expected a port from 1 to 65535');

const poolSchema = z.strictObject({
  /** workers started by the supervisor on portBase, portBase+1, ... */
  instances: z.number().int().min(0).default(2),
  portBase: z.number().int().min(1).max(65535).default(9100),
  host: z.string().default('127.0.0.1'),
  /** with `hosts` (several hosts): the hosts this pool runs on, `instances` on each (default every host) */
  hosts: z.array(z.string()).min(1, 'expected at least one host name (leave hosts out for every host)').optional(),
  /** static upstreams instead of supervised instances: front any existing HTTP app */
  targets: z.array(hostPort).min(1, 'expected at least one host:port (leave targets out for supervised instances)').optional(),
  /** in-flight requests per worker */
  concurrency: positiveInt(1),
  queue: z
    .strictObject({
      max: z.number().int().min(0).default(100),
      timeoutMs: ms(10_000),
    })
    .prefault({}),
  recycle: z
    .strictObject({
      maxRequests: z.number().int().min(0).default(0),
      maxAgeSec: z.number().int().min(0).default(0),
      maxRssMb: z.number().int().min(0).default(0),
      jitter: z.number().min(0).max(0.9).default(0.1),
    })
    .prefault({}),
  /** fair share: what one client (fair-share key: bot token; a crawler's /24 or /48; otherwise the address, or its /56 for IPv6) may take */
  perClient: z
    .strictObject({
      /** slots one client holds at once (default: one worker's concurrency; 0 = no limit); its other requests wait */
      maxInFlight: z.number().int().min(0).optional(),
      /** requests one client may have waiting; 429 with Retry-After past it */
      maxQueued: positiveInt(16),
      /** WebSocket connections one client may have open to the pool (of maxUpgraded); 503 past it */
      maxUpgraded: positiveInt(16),
    })
    .prefault({}),
  drainTimeoutSec: z.number().int().min(0).default(60),
  maxUnavailable: positiveInt(1),
  /** WebSocket connections open at once through the proxy to this pool's workers; 503 above */
  maxUpgraded: z.number().int().min(0).default(256),
});
export type PoolConfig = z.infer<typeof poolSchema>;

const defaultPools = {
  web: { instances: 2, portBase: 9100 },
  clone: { instances: 2, portBase: 9200, queue: { max: 50, timeoutMs: 30_000 } },
  bot: { instances: 1, portBase: 9300, queue: { max: 50, timeoutMs: 60_000 } },
};

const proxySchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(8080),
  debugHeaders: z.boolean().default(false),
  /** loopback API for the supervisor: fleet state, drains, stats, metrics (Bearer admin token) */
  control: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8081),
    })
    .prefault({}),
  /** X-Forwarded-* and PROXY protocol are believed only from these peers */
  trustedProxies: z.array(cidr).default(['127.0.0.1/32', '::1/128']),
  /** accept a PROXY protocol v1/v2 header from trusted peers */
  proxyProtocol: z.boolean().default(false),
  /** path prefixes of the workers' own endpoints: 404 to clients (compared without case) */
  internalPaths: z.array(z.string().startsWith('/')).default(['/_worker/']),
  static: z
    .strictObject({
      prefix: z.string().startsWith('/').endsWith('/').default('/_static/'),
      root: z.string().default('worker/public'),
      maxAgeSec: z.number().int().min(0).default(3600),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxHeaderBytes: z.number().int().min(1024).max(65536).default(16384),
      maxUrlBytes: z.number().int().min(256).max(65536).default(8192),
      /** request bodies above this get 413 (0 = unlimited) */
      maxBodyBytes: z.number().int().min(0).default(1024 * 1024 * 1024),
      /** slowloris guard: all request headers within this time */
      headersTimeoutMs: ms(10_000),
    })
    .prefault({}),
  bodies: z
    .strictObject({
      /** of a request body, this much is held in memory; the rest of what is buffered goes to a temp file */
      memoryBytes: z.number().int().min(0).default(64 * 1024),
      /** request-body bytes held in memory by all requests together; past it, bodies go to temp files */
      memoryTotalBytes: z.number().int().min(0).default(32 * 1024 * 1024),
      /** buffered bytes (memory and temp files) of one client's bodies at once (its fair-share key); 503 past it */
      perClientBytes: positiveInt(64 * 1024 * 1024),
      /** temp files of buffered bodies (default <data>/spool/bodies); emptied at start */
      spoolDir: z.string().optional(),
      /** bytes in temp files at once, all requests together; a body that would pass it gets 503 */
      spoolTotalBytes: z.number().int().min(0).default(1024 * 1024 * 1024),
      /** a body arriving slower than this (measured over rateWindowMs of waiting for it) gets 408 */
      minBytesPerSec: z.number().int().min(0).default(1024),
      rateWindowMs: positiveInt(5000),
      /**
       * a body streaming to a worker (past bodyBufferBytes) may keep it waiting on the client this
       * long in all (time the worker or the queue makes the client wait does not count); 408 after
       */
      streamTimeoutMs: positiveInt(3_600_000),
    })
    .prefault({}),
  upgrades: z
    .strictObject({
      /**
       * Upgrade protocols passed to workers; a request asking for another one is served as a plain
       * request when it has no body, and gets 400 with one (Node's parser stops at an upgrade offer)
       */
      protocols: z.array(z.string().toLowerCase()).default(['websocket']),
      /** an upgraded connection with no bytes either way for this long is closed */
      idleTimeoutMs: positiveInt(600_000),
    })
    .prefault({}),
  streaming: z
    .strictObject({
      /** bytes of a response the proxy may hold per request so a worker can finish before a slow client */
      responseWindowBytes: z.number().int().min(16 * 1024).max(64 * 1024 * 1024).default(256 * 1024),
      /** a client that takes no response bytes for this long while the proxy waits on it is cut, freeing its worker */
      sendTimeoutMs: positiveInt(60_000),
      /**
       * a client that keeps its worker waiting (its response past the lane's spoolBytes) must read
       * at least this fast, measured over rateWindowMs of waiting; cut otherwise (0 = no minimum)
       */
      minBytesPerSec: z.number().int().min(0).default(1024),
      rateWindowMs: positiveInt(20_000),
      /** temp files of spooled responses (default <data>/spool/responses); emptied at start */
      spoolDir: z.string().optional(),
      /** bytes of spooled responses on disk at once, all clients; past it responses stream at the client's pace */
      spoolTotalBytes: z.number().int().min(0).default(1024 * MiB),
      /** of that, what one client's responses may take (fair-share key) */
      spoolPerClientBytes: z.number().int().min(0).default(128 * MiB),
    })
    .prefault({}),
  /**
   * clone sharing (clone and bot lanes): identical clone requests are served from one worker
   * answer, written to a spool file that every reader follows at its own pace
   */
  cloneSharing: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** spool files of shared answers (default <data>/spool/clones); emptied at start */
      dir: z.string().optional(),
      /** a completed answer serves identical requests this long (0 = only requests that arrive while it is produced) */
      ttlSec: z.number().int().min(0).default(300),
      /** spool bytes at once, answers being written included; least recently used completed ones go first */
      maxDiskBytes: z.number().int().min(0).default(2048 * MiB),
      /** a clone request body (undone Content-Encoding) larger than this is not shared */
      maxDecodedBodyBytes: positiveInt(MiB),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      connectTimeoutMs: ms(3000),
      /** 504 when the worker sends no response headers within this time */
      responseTimeoutMs: ms(300_000),
      /** keep below the worker's own keep-alive timeout (Node default 5s) */
      idleSocketTimeoutMs: ms(4000),
    })
    .prefault({}),
  healthCheck: z
    .strictObject({
      path: z.string().startsWith('/').default('/_worker/health'),
      intervalMs: positiveInt(2000),
      timeoutMs: positiveInt(1000),
    })
    .prefault({}),
  clients: z
    .strictObject({
      static: clientPolicySchema.prefault({ idleTimeoutMs: 5000 }),
      browser: clientPolicySchema.prefault({ idleTimeoutMs: 5000 }),
      page: clientPolicySchema.prefault({ idleTimeoutMs: 5000 }),
      clone: clientPolicySchema.prefault({ idleTimeoutMs: 15_000, requestTimeoutMs: 600_000 }),
      bot: clientPolicySchema.prefault({ idleTimeoutMs: 15_000, requestTimeoutMs: 600_000 }),
      /** per client IP (the PROXY-protocol or socket address; trusted proxies are exempt) */
      maxConnectionsPerIp: z.number().int().min(0).default(64),
      /** client connections in all; past it the oldest idle one is closed, or the new one gets 503 */
      maxConnections: positiveInt(10_000),
      /** pipelined requests waiting behind the one in flight on a connection (served in turn); 503 past it */
      maxPipelined: z.number().int().min(0).default(8),
      overload: z
        .strictObject({
          /** the proxy counts as overloaded above this many client connections... */
          connections: z.number().int().min(1).default(4000),
          /** ...and then idle connections are closed after this instead */
          idleTimeoutMs: ms(1000),
        })
        .prefault({}),
    })
    .prefault({}),
  /** one line per request answered, as nginx's access_log; SIGUSR1 reopens the file (log rotation) */
  accessLog: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** default <data>/log/access.log; a relative path is taken from the checkout, as every path in this file */
      path: z.string().min(1).optional(),
      /** combined: nginx's and Apache's format; json: one object per line, with lane, worker and timings */
      format: z.enum(ACCESS_LOG_FORMATS).default('combined'),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** /healthz turns 503 this long before the listener closes, so a load balancer stops first */
      healthFailLeadMs: ms(0),
      /** in-flight requests get this long to finish */
      graceMs: ms(30_000),
    })
    .prefault({}),
});
export type ProxyConfig = z.infer<typeof proxySchema>;

/** One host of a site that runs on several: where the other hosts reach its workers, proxy and supervisor. */
const siteHostSchema = z.strictObject({
  address: z.string().regex(/^[A-Za-z0-9.\-]+$|^[0-9A-Fa-f:.]+$/, { message: 'expected a host name or an IP address, e.g. 10.0.0.1' }),
});
export type SiteHostConfig = z.infer<typeof siteHostSchema>;

export const configSchema = z.strictObject({
  /** data directory (SWITCHYARD_DATA) */
  data: z.string().default('./var'),
  /**
   * several hosts: each runs a proxy, a supervisor and its share of the pools (SWITCHYARD_HOST
   * names the one a process is on); absent, everything runs on this one
   */
  hosts: z.record(z.string().regex(/^[a-z][a-z0-9]*$/, 'expected a host name of lowercase letters and digits, e.g. a or host2'), siteHostSchema).optional(),
  proxy: proxySchema.prefault({}),
  bots: z
    .strictObject({
      cidrs: z.array(cidr).default([]),
      userAgents: z
        .array(regexSource)
        .default(['Jenkins', 'GitLab-Runner', 'buildkite', 'TeamCity', 'Bamboo', '\\bCI\\b']),
      /**
       * crawlers that say who they are: bots too, and since they spread over neighbouring
       * addresses, one fair-share key per /24 (IPv4) or /48 (IPv6)
       */
      crawlerUserAgents: z.array(regexSource).default(CRAWLER_USER_AGENTS),
      tokens: z.array(z.string().min(8)).default([]),
    })
    .prefault({}),
  classify: z.array(ruleSchema).default(DEFAULT_RULES),
  lanes: z
    .strictObject(Object.fromEntries(LANES.map((lane) => [lane, laneSchema(LANE_DEFAULTS[lane])])) as { [lane in Lane]: ReturnType<typeof laneSchema> })
    .prefault({}),
  pools: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a lowercase pool name'), poolSchema).prefault(defaultPools),
  worker: z
    .strictObject({
      repos: z.string().optional(),
      cacheBytes: z.number().int().min(0).default(32 * 1024 * 1024),
      leakBytesPerRequest: z.number().int().min(0).default(0),
      shutdownTimeoutMs: ms(30_000),
      /** how long a worker keeps an idle proxy connection open; the proxy closes its own first */
      keepAliveTimeoutMs: ms(5000),
      /**
       * largest git/hg protocol request body (fetch negotiation, hg arguments), counted after
       * undoing a gzip/deflate Content-Encoding: 413 above it
       */
      maxRequestBodyBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    })
    .prefault({}),
  supervisor: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8090),
      historyDays: positiveInt(14),
    })
    .prefault({}),
});

export type SwitchyardConfig = z.infer<typeof configSchema>;
