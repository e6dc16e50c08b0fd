import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { runToExit } from '../../helpers/run-to-exit.ts';
import { freePort } from '../../helpers/worker-harness.ts';

// An unusable admin token must stop the proxy and the supervisor before they serve anything: an
// empty one used to turn authentication off (GET /state with no header, any Bearer on /api/fleet).

const ENTRIES = [
  { entry: 'proxy/main.ts', started: /"msg":"proxy listening"/ },
  { entry: 'supervisor/main.ts', started: /"msg":"admin token for the API and dashboard"|"msg":"supervisor listening"/ },
];
const dirs: string[] = [];

after(() => {
  for (const dir of dirs) {
    // Only a supervisor that wrongly started would have launched a PM2 daemon here.
    if (existsSync(path.join(dir, 'pm2', 'pm2.pid'))) {
      execFileSync(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'pm2', 'bin', 'pm2'), 'kill'], { env: { ...process.env, PM2_HOME: path.join(dir, 'pm2') }, stdio: 'ignore', timeout: 20_000 });
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A data dir with a config file; `token` (if given) written to <data>/admin-token with `mode`. */
async function setup(token: string | undefined, mode = 0o600): Promise<{ env: NodeJS.ProcessEnv; file: string }> {
  const data = mkdtempSync(path.join(os.tmpdir(), 'switchyard-token-start-'));
  dirs.push(data);
  const config = {
    data,
    proxy: { host: '127.0.0.1', port: 0, control: { port: 0 } },
    supervisor: { port: await freePort() },
    pools: { web: { instances: 1, portBase: await freePort() } },
    lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
  };
  writeFileSync(path.join(data, 'switchyard.yaml'), stringify(config));
  const file = path.join(data, 'admin-token');
  if (token !== undefined) {
    writeFileSync(file, token, { mode });
    chmodSync(file, mode);
  }
  const env = { SWITCHYARD_CONFIG: path.join(data, 'switchyard.yaml'), SWITCHYARD_ADMIN_TOKEN: undefined, PM2_HOME: path.join(data, 'pm2'), LOG_LEVEL: 'info' };
  return { env, file };
}

async function assertRefused(env: NodeJS.ProcessEnv, expected: RegExp, source: string): Promise<void> {
  for (const { entry, started } of ENTRIES) {
    const result = await runToExit(entry, env, { killOn: started });
    assert.doesNotMatch(result.output, started, `${entry} started with that token:\n${result.output}`);
    assert.equal(result.code, 78, `${entry}: ${result.output}`);
    const fatal = result.lines.filter((line) => line.level === pino.levels.values.fatal);
    assert.equal(fatal.length, 1, `${entry}: one fatal line\n${result.output}`);
    assert.equal(fatal[0].file, source, entry);
    assert.match(fatal[0].msg, expected, entry);
    assert.doesNotMatch(fatal[0].msg, /\n/, 'one line');
  }
}

test('an empty or blank admin-token file stops the proxy and the supervisor with exit 78, naming the file', { timeout: 120_000 }, async () => {
  for (const content of ['', ' \n']) {
    const { env, file } = await setup(content);
    await assertRefused(env, new RegExp(`^the admin token file ${file} is empty .*expected one line of at least 20 visible ASCII characters`), file);
  }
});

test('an admin-token file readable by others stops both, saying to chmod 600', { timeout: 120_000 }, async () => {
  const { env, file } = await setup('a-perfectly-good-token-0123456789\n', 0o644);
  await assertRefused(env, new RegExp(`mode 0644\\): run chmod 600 ${file}$`), file);
});

test('a blank or short SWITCHYARD_ADMIN_TOKEN stops both with exit 78', { timeout: 120_000 }, async () => {
  for (const value of ['   ', 'short']) {
    const { env } = await setup('a-perfectly-good-token-0123456789\n');
    await assertRefused({ ...env, SWITCHYARD_ADMIN_TOKEN: value }, /^SWITCHYARD_ADMIN_TOKEN is set but .*expected one line of at least 20/, 'SWITCHYARD_ADMIN_TOKEN');
  }
});
