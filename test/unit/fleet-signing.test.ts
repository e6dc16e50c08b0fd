import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import {
  FLEET_MESSAGE_MAX_AGE_MS,
  FLEET_MESSAGE_MAX_BYTES,
  fleetKey,
  signFleetMessage,
  signStateEntry,
  verifyFleetMessage,
  verifyStateEntry,
} from '../../lib/fleet-signing.ts';
import { ThrottledLog } from '../../lib/throttled-log.ts';

const KEY = fleetKey('the-admin-token-0123456789');
const NOW = 1_800_000_000_000;
const reason = (verified: { ok: boolean; reason?: string }) => (verified.ok ? 'ok' : verified.reason);

test('the fleet key is derived from the admin token, is not the token, and an empty token is refused', () => {
  assert.equal(KEY.length, 32);
  assert.deepEqual(fleetKey('the-admin-token-0123456789'), KEY);
  assert.notDeepEqual(fleetKey('the-admin-token-0123456780'), KEY);
  assert.ok(!KEY.toString('latin1').includes('the-admin-token'));
  assert.throws(() => fleetKey(''), /admin token is empty/);
});

test('a signed message verifies with its states and time; anything changed, unsigned, foreign or stale does not', () => {
  const text = signFleetMessage(KEY, { 'web-0': 'draining', 'web-1': 'ready' }, NOW);
  assert.deepEqual(verifyFleetMessage(KEY, text, NOW + 1000), { ok: true, at: NOW, value: { 'web-0': 'draining', 'web-1': 'ready' } });

  const { payload, sig } = JSON.parse(text) as { payload: string; sig: string };
  assert.equal(reason(verifyFleetMessage(KEY, JSON.stringify({ payload: payload.replace('ready', 'down'), sig }), NOW)), 'bad signature');
  assert.equal(reason(verifyFleetMessage(KEY, JSON.stringify({ payload, sig: sig.slice(1) }), NOW)), 'bad signature');
  assert.equal(reason(verifyFleetMessage(KEY, JSON.stringify({ payload, sig: 42 }), NOW)), 'bad signature');
  assert.equal(reason(verifyFleetMessage(fleetKey('another-admin-token-012345'), text, NOW)), 'bad signature');
  assert.equal(reason(verifyFleetMessage(KEY, JSON.stringify({ states: { 'web-0': 'draining' }, at: new Date(NOW).toISOString() }), NOW)), 'unsigned');
  for (const junk of ['', 'null', '[]', '"text"', '{"payload":1}', '{']) assert.equal(reason(verifyFleetMessage(KEY, junk, NOW)), 'unsigned', junk);
  assert.equal(reason(verifyFleetMessage(KEY, text, NOW + FLEET_MESSAGE_MAX_AGE_MS + 1)), 'stale');
  assert.equal(reason(verifyFleetMessage(KEY, text, NOW - FLEET_MESSAGE_MAX_AGE_MS - 1)), 'from the future');
  assert.equal(reason(verifyFleetMessage(KEY, text, NOW + FLEET_MESSAGE_MAX_AGE_MS)), 'ok', 'the window is inclusive');
  assert.equal(reason(verifyFleetMessage(KEY, 'x'.repeat(FLEET_MESSAGE_MAX_BYTES + 1), NOW)), 'too large');

  const badStates = signFleetMessage(KEY, { 'web-0': 'asleep' } as never, NOW);
  assert.deepEqual(verifyFleetMessage(KEY, badStates, NOW), { ok: true, at: NOW, value: {} }, 'unknown states are dropped even when signed');
});

test('a state hash entry is bound to its worker, and a message signature is not an entry signature', () => {
  const entry = signStateEntry(KEY, 'web-0', 'draining', NOW);
  assert.deepEqual(verifyStateEntry(KEY, 'web-0', entry, NOW), { ok: true, at: NOW, value: 'draining' });
  assert.equal(reason(verifyStateEntry(KEY, 'web-1', entry, NOW)), 'bad signature', 'moved to another worker');
  assert.equal(reason(verifyStateEntry(KEY, 'web-0', entry.replace('draining', 'ready'), NOW)), 'bad signature');
  assert.equal(reason(verifyStateEntry(KEY, 'web-0', entry.replace(String(NOW), String(NOW + 1)), NOW)), 'bad signature');
  assert.equal(reason(verifyStateEntry(KEY, 'web-0', 'draining', NOW)), 'unsigned', 'the old plain value');
  assert.equal(reason(verifyStateEntry(KEY, 'web-0', entry, NOW + FLEET_MESSAGE_MAX_AGE_MS + 1)), 'stale');

  const message = JSON.parse(signFleetMessage(KEY, { 'web-0': 'draining' }, NOW)) as { sig: string };
  assert.equal(reason(verifyStateEntry(KEY, 'web-0', JSON.stringify({ state: 'draining', at: NOW, sig: message.sig }), NOW)), 'bad signature');
});

test('a throttled log writes the first line, counts the rest, and reports the count with the next one', () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const throttled = new ThrottledLog(log, 60_000);
  assert.equal(throttled.write({ reason: 'unsigned' }, 'ignored', 0), true);
  for (let i = 1; i <= 500; i++) assert.equal(throttled.write({ reason: 'unsigned' }, 'ignored', i), false);
  assert.equal(throttled.write({ reason: 'stale' }, 'ignored', 60_000), true);
  assert.equal(lines.length, 2);
  assert.equal(lines[0].suppressed, undefined);
  assert.equal(lines[1].suppressed, 500);
  assert.equal(lines[1].reason, 'stale');
  assert.equal(lines[1].level, pino.levels.values.warn);
});
