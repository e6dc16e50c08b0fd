import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startFleetStack, type FleetStack } from '../../test/helpers/fleet-stack.ts';
import { PrivatePostgres } from '../../test/helpers/private-postgres.ts';
import { PrivateRedis } from '../../test/helpers/private-redis.ts';
import { runClone } from '../lib/clones.ts';
import { cpuWithChildrenMs } from '../lib/cpu.ts';
import { processTree } from '../lib/proc-stats.ts';
import { connectionOwners } from './socket-owners.ts';

// What Redis and PostgreSQL see from a running fleet: the whole stack under PM2 (as `npm start`
// runs it) with REDIS_URL and DATABASE_URL pointing at a Redis and a PostgreSQL of the bench's
// own (so nothing else's traffic is counted), measured over a window while idle and while clients
// clone through the proxy. Redis: INFO commandstats and INFO cpu deltas, and MONITOR to
// tell which process sent each command. PostgreSQL: pg_stat_user_tables row deltas, commits and
// the server's CPU from /proc.

export interface StoreWindow {
  label: string;
  seconds: number;
  /** clones answered through the proxy during the window */
  clones: number;
  redis: {
    calls: Record<string, number>;
    /** by sender: the PM2 app (proxy, supervisor, worker-<pool>) or `lua` (inside a script) */
    bySender: Record<string, number>;
    cpuMs: number;
    monitorCapped: boolean;
  };
  postgres: {
    /** rows inserted + updated + deleted, by table */
    rows: Record<string, number>;
    commits: number;
    cpuMs: number;
  };
}

export interface StoreLoadOptions {
  seconds: number;
  /** parallel clone loops in the busy window */
  cloners: number;
  onProgress?(message: string): void;
}

const MONITOR_CAP = 2_000_000;
const MAX_BUSY_CLONES = 2_000;
const CLONE_DEADLINE_MS = 60_000;

function infoFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

interface RedisReading {
  calls: Map<string, number>;
  cpuMs: number;
}

async function readRedis(redis: Redis): Promise<RedisReading> {
  const stats = infoFields(await redis.info('commandstats'));
  const calls = new Map<string, number>();
  for (const [key, value] of stats) {
    const match = /calls=(\d+)/.exec(value);
    if (key.startsWith('cmdstat_') && match) calls.set(key.slice('cmdstat_'.length), Number(match[1]));
  }
  const cpu = infoFields(await redis.info('cpu'));
  return {
    calls,
    cpuMs: (Number(cpu.get('used_cpu_user')) + Number(cpu.get('used_cpu_sys'))) * 1000,
  };
}

interface PgReading {
  rows: Map<string, number>;
  commits: number;
}

async function readPostgres(client: pg.Client): Promise<PgReading> {
  const tables = await client.query<{ relname: string; n: string }>('SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS n FROM pg_stat_user_tables');
  const db = await client.query<{ xact_commit: string }>('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()');
  return { rows: new Map(tables.rows.map((row) => [row.relname, Number(row.n)])), commits: Number(db.rows[0]?.xact_commit ?? 0) };
}

/** after - before for every key of after, zeros left out. */
function delta(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after) if (value - (before.get(key) ?? 0) > 0) out[key] = value - (before.get(key) ?? 0);
  return out;
}

/** Every PM2 app's processes (with their children, e.g. the proxy master's proxy), by app name. */
async function appProcesses(stack: FleetStack): Promise<Map<string, number[]>> {
  const owners = new Map<string, number[]>();
  for (const app of await stack.pm2.list()) if (app.pid > 0) owners.set(app.name, [...(owners.get(app.name) ?? []), ...processTree(app.pid)]);
  return owners;
}

/** Counts the commands Redis executes, by sender, until stopped. */
async function monitorSenders(url: string, redisPort: number, stack: FleetStack, ownPort: number) {
  const client = new Redis(url, { lazyConnect: true });
  const monitor = await client.monitor();
  const bySource = new Map<string, number>();
  let total = 0;
  monitor.on('monitor', (_time: string, _args: string[], source: string) => {
    if (++total > MONITOR_CAP || source.endsWith(`:${ownPort}`)) return;
    bySource.set(source, (bySource.get(source) ?? 0) + 1);
  });
  return {
    async stop(): Promise<{ bySender: Record<string, number>; capped: boolean }> {
      const owners = connectionOwners(redisPort, await appProcesses(stack));
      monitor.disconnect();
      client.disconnect();
      const bySender: Record<string, number> = {};
      for (const [source, count] of bySource) {
        const port = Number(source.slice(source.lastIndexOf(':') + 1));
        const sender = source === 'lua' ? 'lua' : (owners.get(port) ?? 'other');
        bySender[sender] = (bySender[sender] ?? 0) + count;
      }
      return { bySender, capped: total > MONITOR_CAP };
    },
  };
}

/** Clones demo-git and demo-hg through the proxy in `cloners` loops until `until`; returns the clones that succeeded. */
async function cloneLoops(proxyUrl: string, cloners: number, until: number): Promise<number> {
  const scratch = path.join(os.tmpdir(), `switchyard-bench-sizing-stores-${process.pid}`);
  let clones = 0;
  let started = 0;
  const loop = async (lane: number) => {
    while (Date.now() < until && started < MAX_BUSY_CLONES) {
      const kind = (started++ + lane) % 2 === 0 ? 'git' : 'hg';
      const deadline = Math.min(CLONE_DEADLINE_MS, Math.max(1000, until - Date.now() + 10_000));
      if ((await runClone(kind, `${proxyUrl}/demo-${kind}`, path.join(scratch, `c-${lane}`), deadline)).ok) clones++;
    }
  };
  await Promise.all(Array.from({ length: cloners }, (_, lane) => loop(lane)));
  return clones;
}

const postmasterPid = (dataDir: string) => Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

async function measureWindow(
  label: string,
  seconds: number,
  stack: FleetStack,
  stores: { redis: Redis; redisUrl: string; redisPort: number; pg: pg.Client; pgPid: number },
  load: (until: number) => Promise<number>,
): Promise<StoreWindow> {
  const monitor = await monitorSenders(stores.redisUrl, stores.redisPort, stack, stores.redis.stream.localPort ?? 0);
  const [redisBefore, pgBefore, pgCpuBefore] = [await readRedis(stores.redis), await readPostgres(stores.pg), cpuWithChildrenMs(stores.pgPid)];
  const started = Date.now();
  const clones = await load(started + seconds * 1000);
  const elapsed = Date.now() - started;
  if (elapsed < seconds * 1000) await new Promise((resolve) => setTimeout(resolve, seconds * 1000 - elapsed));
  // the supervisor writes history every few seconds; a change made in the window may land just after it: both windows alike
  const [redisAfter, pgAfter, pgCpuAfter] = [await readRedis(stores.redis), await readPostgres(stores.pg), cpuWithChildrenMs(stores.pgPid)];
  const senders = await monitor.stop();
  const calls = delta(redisAfter.calls, redisBefore.calls);
  // this bench's own readings and MONITOR (an app's INFO is its client's ready check on connect: rare)
  delete calls.info;
  delete calls.monitor;
  return {
    label,
    seconds,
    clones,
    redis: { calls, bySender: senders.bySender, cpuMs: redisAfter.cpuMs - redisBefore.cpuMs, monitorCapped: senders.capped },
    postgres: { rows: delta(pgAfter.rows, pgBefore.rows), commits: pgAfter.commits - pgBefore.commits, cpuMs: pgCpuAfter - pgCpuBefore },
  };
}

/** The stack with its own Redis and PostgreSQL: one window idle, one under clone loops. */
export async function measureStoreLoad(options: StoreLoadOptions): Promise<{ windows: StoreWindow[]; layout: Record<string, number> }> {
  const layout = { web: 1, clone: 2, bot: 1 };
  const privateRedis = await PrivateRedis.create();
  const privatePg = await PrivatePostgres.create();
  let stack: FleetStack | undefined;
  const redis = new Redis(privateRedis.url, { lazyConnect: true });
  const client = new pg.Client({ connectionString: privatePg.url() });
  try {
    process.env.REDIS_URL = privateRedis.url;
    process.env.DATABASE_URL = privatePg.url();
    options.onProgress?.('starting the stack under PM2 with its own Redis and PostgreSQL');
    stack = await startFleetStack({
      pools: Object.fromEntries(Object.entries(layout).map(([pool, instances]) => [pool, { instances }])),
      proxy: { debugHeaders: false },
    });
    await redis.connect();
    await client.connect();
    const stores = { redis, redisUrl: privateRedis.url, redisPort: privateRedis.port, pg: client, pgPid: postmasterPid(privatePg.dataDir) };
    const running = stack;
    // the history's first writes (migrations, the first snapshot) are start-up, not steady state
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    options.onProgress?.(`idle window, ${options.seconds} s`);
    const idle = await measureWindow('idle', options.seconds, running, stores, async () => 0);
    options.onProgress?.(`busy window, ${options.seconds} s: ${options.cloners} clone loops`);
    const busy = await measureWindow('busy', options.seconds, running, stores, (until) => cloneLoops(running.proxyUrl, options.cloners, until));
    return { windows: [idle, busy], layout };
  } finally {
    redis.disconnect();
    await client.end().catch(() => {});
    await stack?.stop();
    delete process.env.REDIS_URL;
    delete process.env.DATABASE_URL;
    await privateRedis.remove();
    await privatePg.remove();
  }
}
