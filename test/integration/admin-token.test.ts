// The admin token file where one process is not enough to show it: several starting at once, and
// a disk that fills (a tmpfs mounted for the test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { refusal, tokenDataDir } from '../helpers/admin-token-refusal.ts';
import { adminToken } from '../../lib/admin-token.ts';

const execFileAsync = promisify(execFile);

test('processes starting together all end up with the one token that was created first', async () => {
  const dir = tokenDataDir();
  const script = `import { adminToken } from ${JSON.stringify(path.join(PROJECT_ROOT, 'lib', 'admin-token.ts'))}; process.stdout.write(adminToken(process.argv[1], {}).token);`;
  const runs = Array.from({ length: 6 }, () =>
    execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { cwd: PROJECT_ROOT, timeout: 30_000 }),
  );
  const tokens = new Set((await Promise.all(runs)).map((run) => run.stdout));
  assert.equal(tokens.size, 1, `different tokens: ${[...tokens].join(', ')}`);
  assert.equal(readFileSync(path.join(dir, 'admin-token'), 'utf8'), `${[...tokens][0]}\n`);
  assert.deepEqual(readdirSync(dir), ['admin-token']);
});

test('a full disk while creating the token file leaves no file, and start-up stops', (t) => {
  const mount = mkdtempSync(path.join(os.tmpdir(), 'switchyard-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount], { stdio: 'pipe' });
  } catch (error) {
    rmSync(mount, { recursive: true, force: true });
    return t.skip(`cannot mount a tmpfs here: ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    const dir = path.join(mount, 'var');
    mkdirSync(dir);
    try {
      writeFileSync(path.join(mount, 'filler'), Buffer.alloc(1 << 20));
    } catch {
      // full: that is the point
    }
    const error = refusal(() => adminToken(dir, {}));
    assert.match(error.message, /cannot create the admin token file .*ENOSPC/);
    assert.deepEqual(readdirSync(dir), [], 'neither an empty token file nor a temp file');
    refusal(() => adminToken(dir, {}));
  } finally {
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});
