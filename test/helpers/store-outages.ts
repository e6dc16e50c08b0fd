import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FLEET_CHANNEL, FLEET_STATE_KEY } from '../../lib/fleet-channel.ts';
import { fleetKey, verifyStateEntry } from '../../lib/fleet-signing.ts';
import { summarizeOutcomes, type LoadOutcome } from './bounded-load.ts';
import { startFleetStack, TEST_TOKEN, type FleetStack } from './fleet-stack.ts';
import { request, waitFor } from './http.ts';
import { PrivatePostgres } from './private-postgres.ts';
import { PrivateRedis } from './private-redis.ts';
import {
  assertLoadServed,
  assertStackStopsClean,
  BROWSER_HEADERS,
  clonesSucceedAfter,
  drainRoundTrip,
  pm2Snapshot,
  startBrowserLoad,
  startCloneLoop,
  type CloneOutcome,
} from './stack-load.ts';

// The whole stack with its PostgreSQL (supervisor history, worker registry) and its Redis (fleet
// messages, worker cache) of its own, both really stopped and started while browsers page and
// git/hg clone through the proxy, and a drain goes through the API. Nothing may restart, no
// request may wait forever, every page is a 200 and every clone verifies (no failure is allowed:
// neither store is on the path of a page or a clone, which are served from the repos on disk),
// and after each outage everything is back: history written (what happened during the outage
// included), the registry on PostgreSQL, drains and the cache on Redis.

const REQUEST_TIMEOUT_MS = 20_000;
const CLONE_TIMEOUT_MS = 60_000;
const RECOVERY_TIMEOUT_MS = 90_000;
const PHASE_MAX_MS = 240_000;

interface PhaseReport {
  fault: string;
  pages: string;
  clones: string;
  drainReachedProxyMs: number[];
  recoveryMs: number;
}

/** The store outages one test file runs (two files, so that each stays well within the per-file timeout). */
export type OutageStore = 'PostgreSQL' | 'Redis';

export function describeOutages(store: OutageStore): void {
  const reports: PhaseReport[] = [];

  describe(`${store} stopped and started under load`, () => {
    let postgres: PrivatePostgres;
    let redis: PrivateRedis;
    let stack: FleetStack;
    let stopped = false;
    let baseline: Awaited<ReturnType<typeof pm2Snapshot>>;

    before(async () => {
      postgres = await PrivatePostgres.create();
      redis = await PrivateRedis.create();
      // every app of the stack inherits them through the PM2 daemon
      process.env.DATABASE_URL = postgres.url();
      process.env.REDIS_URL = redis.url;
      stack = await startFleetStack({
        pools: { web: { instances: 2 }, clone: { instances: 1 } },
        lanes: { bot: { pool: 'web' } },
        proxy: { shutdown: { graceMs: 2000 } },
        worker: { shutdownTimeoutMs: 2000 },
      });
      await waitFor(async () => (await stack.api('GET', '/api/fleet')).body.history?.healthy === true, 'the history on PostgreSQL', 60_000);
      assert.equal((await stack.api('GET', '/api/fleet')).body.history.backend, 'postgres');
      for (const health of await workersHealth()) assert.equal(health.registry.backend, 'postgresql', 'the workers use the PostgreSQL registry');
      await waitFor(async () => (await subscribers()) === 1, "the proxy's fleet subscriber on Redis", 30_000);
      baseline = await pm2Snapshot(stack);
    });

    after(async () => {
      if (!stopped) await stack?.stop();
      await redis?.remove();
      await postgres?.remove();
      delete process.env.DATABASE_URL;
      delete process.env.REDIS_URL;
      if (reports.length > 0) console.log(`pg/redis outage phases: ${JSON.stringify(reports, null, 1)}`);
    });

    const workerPorts = () => Object.values(stack.config.pools).flatMap((pool) => Array.from({ length: pool.instances }, (_, i) => pool.portBase + i));
    async function workersHealth(): Promise<Array<{ registry: { backend: string; degraded: boolean } }>> {
      return Promise.all(workerPorts().map(async (port) => JSON.parse((await request(`http://127.0.0.1:${port}/_worker/health`, { timeoutMs: 5000 })).body)));
    }
    async function subscribers(): Promise<number> {
      const client = redis.client();
      try {
        const [, count] = (await client.pubsub('NUMSUB', FLEET_CHANNEL)) as [string, number];
        return Number(count);
      } finally {
        client.disconnect();
      }
    }
    async function workerCacheKeys(): Promise<number> {
      const client = redis.client();
      try {
        return (await client.keys('switchyard:worker:v1:*')).length;
      } finally {
        client.disconnect();
      }
    }

    let freshRevision = 0;
    /** Pages no worker has rendered yet (a revision never asked for): each one a cache miss that reads and writes the shared cache. */
    async function freshPagesAnswer(when: string): Promise<void> {
      for (let i = 0; i < 4; i++) {
        const url = `${stack.proxyUrl}/demo-git/tree/fresh-${process.pid}-${freshRevision++}/`;
        const response = await request(url, { headers: BROWSER_HEADERS, timeoutMs: REQUEST_TIMEOUT_MS }).catch((error: Error) => ({ status: error.message }));
        assert.equal(response.status, 404, `${when}: a page that misses every cache answers (${url})`);
      }
    }

    /** The history has what happened at or after `since`, drains included, read from the database. */
    async function historyHasDrainSince(since: number): Promise<boolean> {
      const { status, body } = await stack.api('GET', `/api/events?since=${new Date(since).toISOString()}`);
      return status === 200 && body.source === 'history' && body.events.some((event: { kind: string; worker?: string }) => event.kind === 'drain' && event.worker === 'web-1');
    }

    async function postgresRecovered(outageStart: number): Promise<void> {
      await waitFor(async () => (await stack.api('GET', '/api/fleet')).body.history?.healthy === true, 'the history written to PostgreSQL again', RECOVERY_TIMEOUT_MS);
      await waitFor(() => historyHasDrainSince(outageStart), 'the drain made during the outage is in the history', RECOVERY_TIMEOUT_MS);
      await waitFor(async () => (await workersHealth()).every((health) => !health.registry.degraded), 'every worker back on the PostgreSQL registry', RECOVERY_TIMEOUT_MS);
    }

    async function redisRecovered(): Promise<void> {
      await waitFor(async () => (await subscribers()) === 1, "the proxy's fleet subscriber back on Redis", RECOVERY_TIMEOUT_MS);
      // the restarted Redis is empty: a signed entry in the state hash was written by the supervisor since
      await drainRoundTrip(stack, 'web-1');
      const key = fleetKey(TEST_TOKEN);
      await waitFor(
        async () => {
          const client = redis.client();
          try {
            const entry = await client.hget(FLEET_STATE_KEY, 'web-1');
            return entry !== null && verifyStateEntry(key, 'web-1', entry).ok;
          } finally {
            client.disconnect();
          }
        },
        'the supervisor publishes signed fleet states on Redis again',
        RECOVERY_TIMEOUT_MS,
      );
      // a revision never asked for is a fresh cache key: a miss in every worker's memory, written through to Redis
      let attempt = 0;
      await waitFor(
        async () => {
          await request(`${stack.proxyUrl}/demo-git/tree/no-such-rev-${process.pid}-${attempt++}/`, { timeoutMs: REQUEST_TIMEOUT_MS });
          return (await workerCacheKeys()) > 0;
        },
        'worker cache entries reach Redis again',
        RECOVERY_TIMEOUT_MS,
      );
    }

    /** Thaws Redis and empties it, as a restart would: what the recovery checks find was written since. */
    async function thawRedisEmptied(): Promise<void> {
      redis.thaw();
      const client = redis.client();
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    }

    const faults = [
      { name: 'PostgreSQL stopped (fast: sessions ended)', stop: () => postgres.stop('fast'), start: () => postgres.start(), recovered: postgresRecovered },
      { name: 'PostgreSQL stopped (immediate: a crash)', stop: () => postgres.stop('immediate'), start: () => postgres.start(), recovered: postgresRecovered },
      { name: 'Redis SHUTDOWN NOSAVE', stop: () => redis.stop('shutdown'), start: () => redis.start(), recovered: () => redisRecovered() },
      { name: 'Redis killed (SIGKILL)', stop: () => redis.stop('kill'), start: () => redis.start(), recovered: () => redisRecovered() },
      // hung, not refused: connections stay open and nothing is ever answered
      { name: 'PostgreSQL frozen (SIGSTOP)', stop: async () => postgres.freeze(), start: async () => postgres.thaw(), recovered: postgresRecovered },
      { name: 'Redis frozen (SIGSTOP)', stop: async () => redis.freeze(), start: thawRedisEmptied, recovered: () => redisRecovered() },
    ];

    for (const fault of faults.filter((candidate) => candidate.name.startsWith(store))) {
      test(`${fault.name} and started again under load: no restart, no request hangs, pages and clones work, everything recovers`, async () => {
        const load = startBrowserLoad(stack, { requestTimeoutMs: REQUEST_TIMEOUT_MS, maxMs: PHASE_MAX_MS });
        const clones = startCloneLoop(stack, { timeoutMs: CLONE_TIMEOUT_MS, maxMs: PHASE_MAX_MS, pauseMs: 200 });
        const drainReachedProxyMs: number[] = [];
        let pages: LoadOutcome[] = [];
        let cloned: CloneOutcome[] = [];
        let recoveryMs = -1;
        let inEffect = false;
        const pagesOkSince = (since: number, count: number) => load.outcomes.filter((outcome) => outcome.startedAt >= since && outcome.status === 200).length >= count;
        try {
          await waitFor(() => pagesOkSince(0, 10), 'pages served before the fault', 30_000);

          const outageStart = Date.now();
          await fault.stop();
          inEffect = true;
          await waitFor(() => pagesOkSince(outageStart, 30), 'pages served during the outage', 60_000);
          await clonesSucceedAfter(clones, outageStart, 'during the outage', CLONE_TIMEOUT_MS * 2);
          await freshPagesAnswer('during the outage');
          drainReachedProxyMs.push(await drainRoundTrip(stack, 'web-1'));
          assert.equal((await stack.api('GET', '/api/fleet')).status, 200, 'the supervisor answers during the outage');
          assert.equal((await stack.api('GET', '/api/events')).status, 200, 'its event log answers during the outage');

          await fault.start();
          inEffect = false;
          const restartedAt = Date.now();
          await fault.recovered(outageStart);
          recoveryMs = Date.now() - restartedAt;
          const recoveredAt = Date.now();
          drainReachedProxyMs.push(await drainRoundTrip(stack, 'web-1'));
          await waitFor(() => pagesOkSince(recoveredAt, 30), 'pages served after recovery', 60_000);
          await clonesSucceedAfter(clones, recoveredAt, 'after recovery', CLONE_TIMEOUT_MS * 2);
        } finally {
          if (inEffect) await fault.start().catch(() => {}); // a failed phase must not leave the next one without its server
          [pages, cloned] = await Promise.all([load.stop(), clones.stop()]);
          reports.push({
            fault: fault.name,
            pages: summarizeOutcomes(pages),
            clones: `${cloned.filter((clone) => !clone.error).length} of ${cloned.length} verified`,
            drainReachedProxyMs,
            recoveryMs,
          });
        }
        assertLoadServed(pages, cloned, REQUEST_TIMEOUT_MS);
        assert.deepEqual(await pm2Snapshot(stack), baseline, 'no process restarted (same pids, same restart counts)');
      });
    }

    test('the stack stops after the outages: no process of it is left, no port is held', async () => {
      stopped = true;
      await assertStackStopsClean(stack);
    });
  });
}
