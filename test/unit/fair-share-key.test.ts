import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fairShareKey } from '../../proxy/fair-share-key.ts';

test('a browser or a page client is its own address; IPv4-mapped IPv6 is the IPv4 address', () => {
  assert.equal(fairShareKey('192.0.2.10', false, undefined), '192.0.2.10');
  assert.equal(fairShareKey('::ffff:192.0.2.10', false, undefined), '192.0.2.10');
  assert.notEqual(fairShareKey('192.0.2.10', false, undefined), fairShareKey('192.0.2.11', false, undefined));
});

test('a crawler counts by its /24 (IPv4) or /48 (IPv6)', () => {
  assert.equal(fairShareKey('192.0.2.10', true, undefined), '192.0.2.0/24');
  assert.equal(fairShareKey('192.0.2.250', true, undefined), '192.0.2.0/24');
  assert.equal(fairShareKey('2001:db8:7:12:aaaa::1', true, undefined), '2001:db8:7:0::/48');
});

test('an IPv6 customer is its /56 (what one is commonly delegated), not each of its 256 /64s', () => {
  assert.equal(fairShareKey('2001:db8:0:1::1', false, undefined), fairShareKey('2001:db8:0:ff::2', false, undefined));
  assert.equal(fairShareKey('2001:db8:0:1::1', false, undefined), '2001:db8:0:0::/56');
  assert.notEqual(fairShareKey('2001:db8:0:100::1', false, undefined), fairShareKey('2001:db8:0:200::1', false, undefined));
});

test('a known bot token is the key wherever it comes from, and does not show the token', () => {
  const a = fairShareKey('192.0.2.10', true, 'ci-secret-token-1');
  assert.equal(a, fairShareKey('198.51.100.7', false, 'ci-secret-token-1'));
  assert.notEqual(a, fairShareKey('192.0.2.10', true, 'ci-secret-token-2'));
  assert.ok(!a.includes('ci-secret'));
});

test('a trusted proxy that names no client: each of its connections is a client of its own', () => {
  const a = fairShareKey('127.0.0.1', false, undefined, { port: 40001 });
  assert.notEqual(a, fairShareKey('127.0.0.1', false, undefined, { port: 40002 }));
  assert.notEqual(a, fairShareKey('127.0.0.1', false, undefined));
});
