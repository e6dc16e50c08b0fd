// Proxy announcements in the `switchyard:proxies` hash: signed, bound to their field, judged by age.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLEET_MESSAGE_MAX_AGE_MS, fleetKey, signFleetMessage, signProxyAnnouncement, signStateEntry, verifyProxyAnnouncement } from '../../lib/fleet-signing.ts';
import { announcementOf, PROXY_PRUNE_MS, type ProxyAnnouncement } from '../../lib/proxy-announcement.ts';

const KEY = fleetKey('the-admin-token-0123456789');
const NOW = 1_800_000_000_000;
const reason = (verified: { ok: boolean; reason?: string }) => (verified.ok ? 'ok' : verified.reason);

const ANNOUNCEMENT: ProxyAnnouncement = {
  id: 'a:8080',
  host: 'a',
  address: '10.0.0.1:8080',
  control: 'http://10.0.0.1:8081',
  version: '0.1.0+abc1234',
  startedAt: new Date(NOW - 60_000).toISOString(),
  pid: 4242,
  at: NOW,
};

test('a signed announcement verifies with every field; tampered, moved, foreign or unsigned ones do not', () => {
  const text = signProxyAnnouncement(KEY, ANNOUNCEMENT);
  assert.deepEqual(verifyProxyAnnouncement(KEY, 'a:8080', text, NOW + 1000), { ok: true, at: NOW, value: ANNOUNCEMENT });

  const { payload, sig } = JSON.parse(text) as { payload: string; sig: string };
  const tampered = JSON.stringify({ payload: payload.replace('10.0.0.1:8081', '10.6.6.6:8081'), sig });
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', tampered, NOW)), 'bad signature', 'a control URL pointed elsewhere');
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'b:8080', text, NOW)), 'bad signature', 'moved to another field');
  assert.equal(reason(verifyProxyAnnouncement(fleetKey('another-admin-token-012345'), 'a:8080', text, NOW)), 'bad signature');
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', JSON.stringify(ANNOUNCEMENT), NOW)), 'unsigned');
  for (const junk of ['', 'null', '{', '{"payload":1}']) assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', junk, NOW)), 'unsigned', junk);
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', 'x'.repeat(300_000), NOW)), 'too large');
});

test("another kind's signature is not an announcement's: each signs under its own label", () => {
  const message = JSON.parse(signFleetMessage(KEY, { 'web-0': 'draining' }, NOW)) as { sig: string };
  const asAnnouncement = JSON.stringify({ payload: JSON.stringify(ANNOUNCEMENT), sig: message.sig });
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', asAnnouncement, NOW)), 'bad signature');
  const entry = JSON.parse(signStateEntry(KEY, 'a:8080', 'ready', NOW)) as { sig: string };
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', JSON.stringify({ payload: JSON.stringify(ANNOUNCEMENT), sig: entry.sig }), NOW)), 'bad signature');
});

test('an old heartbeat verifies (the proxy shows as down) until the prune age; then it is stale', () => {
  const text = signProxyAnnouncement(KEY, ANNOUNCEMENT);
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', text, NOW + 5 * 60_000)), 'ok');
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', text, NOW + PROXY_PRUNE_MS + 1)), 'stale');
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', text, NOW - FLEET_MESSAGE_MAX_AGE_MS - 1)), 'from the future');
  assert.equal(reason(verifyProxyAnnouncement(KEY, 'a:8080', text, NOW + 10_000, 5000)), 'stale', 'a caller may ask for a shorter age');
});

test('a signed announcement with a missing, mistyped or mismatched field is malformed', () => {
  const signed = (changes: Record<string, unknown>, id = 'a:8080') => verifyProxyAnnouncement(KEY, id, signProxyAnnouncement(KEY, { ...ANNOUNCEMENT, ...changes } as ProxyAnnouncement), NOW);
  assert.equal(reason(signed({ pid: '4242' })), 'malformed');
  assert.equal(reason(signed({ pid: 0 })), 'malformed');
  assert.equal(reason(signed({ control: 'javascript:alert(1)' })), 'malformed');
  assert.equal(reason(signed({ version: 'v'.repeat(257) })), 'malformed');
  assert.equal(reason(signed({ host: undefined })), 'malformed');
  assert.equal(announcementOf({ ...ANNOUNCEMENT, extra: 'dropped' })?.host, 'a');
  assert.equal('extra' in announcementOf({ ...ANNOUNCEMENT, extra: 'dropped' })!, false, 'only the known fields are kept');
});
