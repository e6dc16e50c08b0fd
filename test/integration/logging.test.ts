import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import pino from 'pino';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { freePort } from '../helpers/worker-harness.ts';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { startProxy } from '../../proxy/testing.ts';

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

describe('request logging', () => {
  let app: AppProcess;
  before(async () => {
    app = await startApp('logged');
  });
  after(() => app.stop());

  for (const level of ['debug', 'info'] as const) {
    test(`at ${level}: ${level === 'debug' ? 'one line per request' : 'nothing for a good request'}, one warn line per failed one`, async () => {
      const { log, lines } = capturingLogger(level);
      const deadPort = await freePort();
      const proxy = await startProxy({ pools: { web: [app.address], bot: [`127.0.0.1:${deadPort}`] }, log });
      try {
        assert.equal((await request(`${proxy.url}/ok?x=1`)).status, 200);
        const failed = await request(`${proxy.url}/`, { headers: { 'user-agent': 'Jenkins/2.4' } });
        assert.ok(failed.status === 502 || failed.status === 503, `a dead worker's lane failed with ${failed.status}`);
        const requestLines = lines.filter((line) => line.msg === 'request' || line.msg === 'request failed');
        const good = requestLines.filter((line) => line.url === '/ok?x=1');
        if (level === 'debug') {
          assert.equal(good.length, 1);
          assert.equal(good[0].level, pino.levels.values.debug);
          assert.equal(good[0].status, 200);
          assert.equal(good[0].lane, 'page');
          assert.equal(good[0].method, 'GET');
          assert.equal(typeof good[0].ms, 'number');
          assert.ok(good[0].worker, 'names the worker');
        } else {
          assert.equal(good.length, 0);
        }
        const bad = requestLines.filter((line) => line.msg === 'request failed');
        assert.equal(bad.length, 1);
        assert.equal(bad[0].level, pino.levels.values.warn);
        assert.equal(bad[0].status, failed.status);
        assert.equal(bad[0].lane, 'bot');
      } finally {
        await proxy.close();
      }
    });
  }
});

test('a LOG_LEVEL pino does not know stops start-up with exit 78 and a line naming it', { timeout: 60_000 }, async () => {
  for (const entry of ['proxy/main.ts', 'supervisor/main.ts']) {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, entry)], {
      env: { ...process.env, LOG_LEVEL: 'verbose' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data));
    child.stderr.on('data', (data: Buffer) => (output += data));
    // A process that ignored the level would start and serve: stop it, and fail below.
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(kill);
    assert.equal(code, 78, `${entry}: ${output}`);
    const fatal = output.split('\n').filter(Boolean).map((line) => JSON.parse(line)).find((line) => line.level === pino.levels.values.fatal);
    assert.ok(fatal, `${entry} printed no fatal line: ${output}`);
    assert.equal(fatal.variable, 'LOG_LEVEL');
    assert.equal(fatal.value, 'verbose');
    assert.match(fatal.msg, /expected one of .*debug.*silent/);
  }
});
