import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFleetStack, TEST_TOKEN, type FleetStack } from '../../helpers/fleet-stack.ts';
import { login } from '../../helpers/dashboard-harness.ts';
import { waitFor } from '../../helpers/http.ts';

let stack: FleetStack;

before(async () => {
  stack = await startFleetStack({ pools: { web: { instances: 1 } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } });
});
after(async () => {
  await stack?.stop();
});

test('a dashboard logout still holds after the supervisor restarts; sessions that did not log out carry on', { timeout: 120_000 }, async () => {
  const fleetWith = async (cookie: string) => (await fetch(`${stack.supervisorUrl}/api/fleet`, { headers: { cookie } })).status;
  const [loggedOut, stayed] = [await login(stack.supervisorUrl, TEST_TOKEN), await login(stack.supervisorUrl, TEST_TOKEN)];
  const logout = await fetch(`${stack.supervisorUrl}/logout`, { method: 'POST', headers: { cookie: loggedOut.cookie, 'x-csrf-token': loggedOut.csrf } });
  assert.equal(logout.status, 204);
  assert.equal(await fleetWith(loggedOut.cookie), 401);

  const pidBefore = (await stack.pm2.list()).find((app) => app.name === 'supervisor')?.pid;
  await stack.pm2.restart('supervisor');
  await waitFor(
    async () => {
      const pid = (await stack.pm2.list()).find((app) => app.name === 'supervisor')?.pid;
      return pid !== undefined && pid !== pidBefore && (await fetch(`${stack.supervisorUrl}/healthz`).then((response) => response.ok, () => false));
    },
    'a new supervisor process answers',
    60_000,
  );

  assert.equal(await fleetWith(stayed.cookie), 200, 'a session that did not log out survives the restart');
  assert.equal(await fleetWith(loggedOut.cookie), 401, 'the logged-out cookie is still refused');
  const page = await fetch(`${stack.supervisorUrl}/`, { headers: { cookie: loggedOut.cookie, accept: 'text/html' }, redirect: 'manual' });
  assert.equal(page.status, 303, 'the page sends it to the login form');
});
