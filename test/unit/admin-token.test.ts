import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { refusal, tokenDataDir } from '../helpers/admin-token-refusal.ts';
import { adminToken, bearerMatches, secretEquals } from '../../lib/admin-token.ts';

const GOOD = 'a-good-admin-token-0123456789';

function withTokenFile(content: string, mode = 0o600): string {
  const dir = tokenDataDir();
  writeFileSync(path.join(dir, 'admin-token'), content, { mode });
  chmodSync(path.join(dir, 'admin-token'), mode); // the umask must not decide the test
  return dir;
}

test('an empty, blank or short token file is refused, naming the file and what is expected', () => {
  for (const content of ['', '\n', '   \n\t', 'short-token\n', 'has a space in it 0123456789\n']) {
    const dir = withTokenFile(content);
    const file = path.join(dir, 'admin-token');
    const error = refusal(() => adminToken(dir, {}));
    assert.equal(error.file, file);
    assert.ok(error.message.includes(file), error.message);
    assert.match(error.message, /expected one line of at least 20 visible ASCII characters/);
    assert.doesNotMatch(error.message, /\n/, 'one line');
    assert.equal(readFileSync(file, 'utf8'), content, 'a refused file is left as it is');
  }
});

test('SWITCHYARD_ADMIN_TOKEN set but empty, blank or short is refused, not replaced by the file', () => {
  for (const value of ['', '   ', 'tooshort']) {
    const dir = withTokenFile(`${GOOD}\n`);
    const error = refusal(() => adminToken(dir, { SWITCHYARD_ADMIN_TOKEN: value }));
    assert.equal(error.file, 'SWITCHYARD_ADMIN_TOKEN');
    assert.match(error.message, /^SWITCHYARD_ADMIN_TOKEN is set but .*expected one line of at least 20/);
  }
  assert.deepEqual(adminToken(tokenDataDir(), { SWITCHYARD_ADMIN_TOKEN: ` ${GOOD}\n` }), { token: GOOD });
});

test('a token file others may read or write is refused like an ssh key, with the fix', () => {
  for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
    const dir = withTokenFile(`${GOOD}\n`, mode);
    const file = path.join(dir, 'admin-token');
    const error = refusal(() => adminToken(dir, {}));
    assert.ok(error.message.includes(`chmod 600 ${file}`), error.message);
    assert.ok(error.message.includes(`mode 0${mode.toString(8)}`), error.message);
  }
  assert.deepEqual(adminToken(withTokenFile(`${GOOD}\n`, 0o600), {}).token, GOOD);
  assert.deepEqual(adminToken(withTokenFile(`${GOOD}\n`, 0o400), {}).token, GOOD);
});

test('a missing token file is created whole, mode 0600, and read back on the next start', () => {
  const dir = path.join(tokenDataDir(), 'var');
  const created = adminToken(dir, {});
  assert.match(created.token, /^[\w-]{32}$/);
  assert.equal(created.file, path.join(dir, 'admin-token'));
  assert.equal(readFileSync(created.file!, 'utf8'), `${created.token}\n`);
  assert.equal(statSync(created.file!).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['admin-token'], 'no temp file left behind');
  assert.deepEqual(adminToken(dir, {}), created);
});

test('the comparisons never accept an empty expected token', () => {
  assert.equal(bearerMatches(undefined, ''), false);
  assert.equal(bearerMatches('Bearer ', ''), false);
  assert.equal(bearerMatches('x', ''), false);
  assert.equal(bearerMatches('', ''), false);
  assert.equal(secretEquals('', ''), false);
  assert.equal(bearerMatches(`Bearer ${GOOD}`, GOOD), true);
  assert.equal(bearerMatches(`bearer  ${GOOD} `, GOOD), true);
  assert.equal(bearerMatches(`Bearer ${GOOD}x`, GOOD), false);
  assert.equal(secretEquals(GOOD, GOOD), true);
  assert.equal(secretEquals(`${GOOD} `, GOOD), false);
});
