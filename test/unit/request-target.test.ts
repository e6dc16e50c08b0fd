import { test } from 'node:test';
import assert from 'node:assert/strict';
// http-proxy-3 rebuilds every forwarded path with this; the proxy's canonical path must survive it unchanged.
import { toURL } from 'http-proxy-3/dist/lib/http-proxy/common.js';
import { canonicalPath, isUnderPrefix, parseRequestTarget } from '../../proxy/request-target.ts';
import { SeededRandom } from '../../lib/seeded-random.ts';

test('origin-form and absolute-form targets are accepted and made canonical', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['/', '/', undefined],
    ['/demo-git/info/refs?service=git-upload-pack', '/demo-git/info/refs?service=git-upload-pack', undefined],
    ['/a/./b/../c', '/a/c', undefined],
    ['/a/%2e%2E/c', '/c', undefined],
    ['/%5Fworker/health', '/_worker/health', undefined],
    ['/a\\..\\b', '/b', undefined],
    ['//double//slash', '//double//slash', undefined],
    ['/q?', '/q', undefined],
    ['/q?a=%41&b=/../', '/q?a=%41&b=/../', undefined],
    ['/sp"ace<', '/sp%22ace%3C', undefined],
    ['/frag#ment', '/frag', undefined],
    ['http://Example.TEST:80/x?y', '/x?y', 'example.test'],
    ['HTTPS://h:8443/', '/', 'h:8443'],
  ];
  for (const [raw, path, host] of cases) assert.deepEqual(parseRequestTarget(raw), { ok: true, path, host }, raw);
});

test('everything else is refused with a reason, never a throw', () => {
  for (const raw of ['*', 'http://a:99999/', 'http://[::1/', 'http:///x', 'http://u:p@h/', 'ftp://h/', 'h:80', '', 'x', 'http://a b/']) {
    const result = parseRequestTarget(raw);
    assert.equal(result.ok, false, raw);
    assert.ok(!result.ok && result.reason.length > 0);
  }
});

test('internal prefixes match without case and through an escaped slash', () => {
  const prefixes = ['/_worker/'];
  assert.ok(isUnderPrefix('/_worker/health', prefixes));
  assert.ok(isUnderPrefix('/_WORKER/health', prefixes));
  assert.ok(isUnderPrefix('/_worker%2fhealth', prefixes));
  assert.ok(!isUnderPrefix('/_workers', prefixes));
  assert.ok(!isUnderPrefix('/x/_worker/health', prefixes));
});

test('seeded random targets: the canonical path is a fixed point, for us and for http-proxy-3, and the fast path agrees with URL', () => {
  const random = new SeededRandom(1717);
  const alphabet = ['/', '/', '.', '..', '%', '2e', '2F', '5f', '41', 'zz', '\\', '?', '#', 'a', 'Z', '~', '-', "'", '"', '<', '{', '|', 'é', ':', '@', '=', '&', '+'];
  for (let i = 0; i < 20_000; i++) {
    let raw = '/';
    const length = random.int(12);
    for (let j = 0; j < length; j++) raw += random.pick(alphabet);
    const result = parseRequestTarget(raw);
    if (!result.ok) continue;
    const canonical = result.path;
    assert.ok(canonical.startsWith('/'), raw);
    assert.deepEqual(parseRequestTarget(canonical), result, `not a fixed point: ${raw} -> ${canonical}`);
    const rebuilt = toURL(canonical);
    assert.equal(`${rebuilt.pathname}${rebuilt.search}`, canonical, `http-proxy-3 would forward another path for ${raw}`);
    const viaUrl = new URL(`http://base.invalid${canonical}`);
    assert.equal(canonicalPath(canonical), `${viaUrl.pathname}${viaUrl.search}`, raw);
  }
});
