// `switchyard check-config` as an operator runs it: the exact lines it prints (file, line, key, the
// value and what was expected) and its exit code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_CONFIG_FILE } from '../../lib/config.ts';
import { runCli, type CliRun } from '../helpers/run-cli.ts';

const SPELLING = 'check the spelling (conf/switchyard.yaml lists every key)';

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'switchyard-check-config-'));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(name: string, lines: string[]): string {
  const file = path.join(tmp, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Runs bin/switchyard.js from the project root with only PATH, HOME and `env` set. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, env, { home: tmp });
}

const GOOD = [
  'proxy:',
  '  port: 8181',
  'supervisor:',
  '  port: 8191',
  'pools:',
  '  web: { instances: 3, portBase: 9400 }',
  '  clone: { targets: [127.0.0.1:9500, 127.0.0.1:9501] }',
  '  bot: { instances: 1, portBase: 9600 }',
];

test('a valid file: exit 0, its path, the ports and every pool on stdout, nothing on stderr', async () => {
  const file = writeConfig('good.yaml', GOOD);
  assert.deepEqual(await cli(['check-config', file]), {
    code: 0,
    stdout: `${file}: OK\n  proxy :8181, dashboard :8191\n  pools: web (3 x :9400+), clone (2 targets), bot (1 x :9600+)\n`,
    stderr: '',
  });
});

test('a site of several hosts: its hosts, and the hosts each pool runs on; a pool naming an unknown host is refused with its line', async () => {
  const site = ['hosts:', '  a: { address: 10.0.0.11 }', '  b: { address: 10.0.0.12 }', 'pools:', '  web: { instances: 2 }', '  clone: { instances: 1, portBase: 9200, hosts: [b] }', '  bot: { targets: [127.0.0.1:9500] }'];
  const file = writeConfig('site.yaml', site);
  assert.deepEqual(await cli(['check-config', file]), {
    code: 0,
    stdout: `${file}: OK\n  proxy :8080, dashboard :8090\n  hosts: a (10.0.0.11), b (10.0.0.12)\n  pools: web (2 x :9100+ on a, b), clone (1 x :9200+ on b), bot (1 targets)\n`,
    stderr: '',
  });
  const bad = writeConfig('bad-site.yaml', site.map((line) => line.replace('hosts: [b]', 'hosts: [c]')));
  const run = await cli(['check-config', bad]);
  assert.equal(run.code, 1);
  assert.equal(run.stderr, `invalid configuration in ${bad}:\n  ${bad}:6: pools.clone.hosts.0: "c" is not a host of the site; expected one of: a, b\n`);
});

test('the shipped config, named relative to the current directory, is valid and printed with its full path', async () => {
  const run = await cli(['check-config', 'conf/switchyard.yaml']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  assert.equal(run.stdout.split('\n')[0], `${DEFAULT_CONFIG_FILE}: OK`);
});

test('an unknown key: exit 1, the file, the line and the key, nothing on stdout', async () => {
  const file = writeConfig('typo.yaml', ['proxy:', '  port: 8080', '  prot: 1']);
  assert.deepEqual(await cli(['check-config', file]), {
    code: 1,
    stdout: '',
    stderr: `invalid configuration in ${file}:\n  ${file}:3: unknown key proxy.prot; ${SPELLING}\n`,
  });
});

test('every problem of a file is printed, in line order, each with the value and what was expected', async () => {
  const file = writeConfig('many.yaml', ['data: ./var', 'proxy:', '  host: 0.0.0.0', '  port: eighty', '  hots: x', 'bots:', '  cidrs: [10.0.0.0/8, 10.0.0.0/33]']);
  assert.deepEqual(await cli(['check-config', file]), {
    code: 1,
    stdout: '',
    stderr: [
      `invalid configuration in ${file}:`,
      `  ${file}:4: proxy.port = "eighty": Invalid input: expected number, received string`,
      `  ${file}:5: unknown key proxy.hots; ${SPELLING}`,
      `  ${file}:7: bots.cidrs.1 = "10.0.0.0/33": expected an IP address or CIDR such as 10.0.0.0/8 or ::1/128`,
      '',
    ].join('\n'),
  });
});

test('a lane naming a missing pool: its line, the pool asked for and the pools there are', async () => {
  const file = writeConfig('lane.yaml', ['lanes:', '  browser: { pool: web }', '  clone:', '    pool: clones']);
  assert.deepEqual(await cli(['check-config', file]), {
    code: 1,
    stdout: '',
    stderr: `invalid configuration in ${file}:\n  ${file}:4: lanes.clone.pool: pool "clones" is not defined; expected one of: web, clone, bot\n`,
  });
});

test('a YAML syntax error: its line and what the parser says', async () => {
  const file = writeConfig('syntax.yaml', ['proxy:', '  port: 8080', ' host: 0.0.0.0']);
  assert.deepEqual(await cli(['check-config', file]), {
    code: 1,
    stdout: '',
    stderr: `invalid configuration in ${file}:\n  ${file}:3: YAML syntax error: All mapping items must start at the same column\n`,
  });
});

test('a file that is not there: exit 1 and why it cannot be read', async () => {
  const file = path.join(tmp, 'missing.yaml');
  assert.deepEqual(await cli(['check-config', file]), {
    code: 1,
    stdout: '',
    stderr: `invalid configuration in ${file}:\n  cannot read the file: ENOENT: no such file or directory, open '${file}'\n`,
  });
});

test('without a file argument: SWITCHYARD_CONFIG, else conf/switchyard.yaml', async () => {
  const typo = writeConfig('env-typo.yaml', ['proxy:', '  prot: 1']);
  assert.deepEqual(await cli(['check-config'], { SWITCHYARD_CONFIG: typo }), {
    code: 1,
    stdout: '',
    stderr: `invalid configuration in ${typo}:\n  ${typo}:2: unknown key proxy.prot; ${SPELLING}\n`,
  });
  const shipped = await cli(['check-config']);
  assert.equal(shipped.code, 0, shipped.stderr);
  assert.equal(shipped.stdout.split('\n')[0], `${DEFAULT_CONFIG_FILE}: OK`);
});

test('environment overrides are applied, and a bad one is named with the value it came with', async () => {
  const file = writeConfig('env.yaml', GOOD);
  assert.deepEqual(await cli(['check-config', file], { SWITCHYARD_PROXY_PORT: '9999', SWITCHYARD_DASHBOARD_PORT: '9998' }), {
    code: 0,
    stdout: `${file}: OK\n  proxy :9999, dashboard :9998\n  pools: web (3 x :9400+), clone (2 targets), bot (1 x :9600+)\n`,
    stderr: '',
  });
  assert.deepEqual(await cli(['check-config', file], { SWITCHYARD_PROXY_PORT: 'abc' }), {
    code: 1,
    stdout: '',
    stderr: `invalid configuration in ${file}:\n  environment: SWITCHYARD_PROXY_PORT=abc (for proxy.port): Invalid input: expected number, received string\n`,
  });
});

test('an unknown command: exit 2 and the usage on stderr', async () => {
  const run = await cli(['check-konfig']);
  assert.equal(run.code, 2);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /^usage: switchyard <command>\n\ncommands:\n {2}check-config \[file\] +validate a config file/);
});
