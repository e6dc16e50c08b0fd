import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { request, waitFor } from '../../helpers/http.ts';
import { startFleetStack, type FleetStack } from '../../helpers/fleet-stack.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';
import { TcpRelay } from '../../helpers/tcp-relay.ts';

// The history database goes away mid-run (a relay in front of the machine's PostgreSQL is cut):
// routing and recycling go on, and the events of the outage reach PostgreSQL once it is back.
describe('PostgreSQL outage under the supervisor', () => {
  const relay = new TcpRelay(5432);
  let stack: FleetStack;
  let databaseUrl: string;

  before(async () => {
    const env = await historyDatabaseEnv();
    assert.ok(env.DATABASE_URL, 'this test needs the PostgreSQL server on 127.0.0.1:5432');
    await relay.start();
    databaseUrl = env.DATABASE_URL.replace(':5432/', `:${relay.port}/`);
    stack = await startFleetStack({ pools: { web: { instances: 2 } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } }, { DATABASE_URL: databaseUrl });
  });
  after(async () => {
    await stack?.stop();
    await relay.cut();
  });

  const recycleEventsInDatabase = async (worker: string, since: Date) => {
    const client = new pg.Client({ connectionString: databaseUrl.replace(`:${relay.port}/`, ':5432/') });
    await client.connect();
    try {
      const rows = await client.query("select count(*)::int as n from switchyard_events where kind = 'recycle' and worker = $1 and at >= $2", [worker, since]);
      return rows.rows[0].n as number;
    } finally {
      await client.end();
    }
  };

  test('with the database cut, a recycle still happens and requests keep flowing', async () => {
    const since = new Date();
    await relay.cut();
    const before = (await stack.fleet()).find((worker) => worker.name === 'web-0')!;
    assert.equal((await stack.api('POST', '/api/workers/web-0/recycle')).status, 202);
    const deadline = Date.now() + 60_000;
    let served = 0;
    while (Date.now() < deadline) {
      assert.equal((await request(`${stack.proxyUrl}/`)).status, 200);
      served++;
      const now = (await stack.fleet()).find((worker) => worker.name === 'web-0')!;
      if (now.pid !== before.pid && now.state === 'ready') break;
    }
    const after = (await stack.fleet()).find((worker) => worker.name === 'web-0')!;
    assert.notEqual(after.pid, before.pid, 'web-0 was restarted during the outage');
    assert.equal(after.state, 'ready');
    assert.ok(served > 0);
    const events = (await stack.api('GET', `/api/events?since=${since.toISOString()}`)).body.events as Array<{ kind: string; worker?: string }>;
    assert.ok(events.some((event) => event.kind === 'recycle' && event.worker === 'web-0'), 'the API still reports the recycle (from memory)');

    await relay.restore();
    await waitFor(async () => (await recycleEventsInDatabase('web-0', since)) >= 1, 'the outage-time recycle event reached PostgreSQL', 30_000);
  });
});
