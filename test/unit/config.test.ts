import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ConfigError,
  DEFAULT_CONFIG_FILE,
  DEFAULT_RULES,
  PROJECT_ROOT,
  configFileFromEnv,
  loadConfig,
  parseConfig,
  validateConfig,
} from '../../lib/config.ts';

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'switchyard-config-'));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(name: string, text: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, text);
  return file;
}

/** Parses text that must be rejected; returns the error after checking it names file and line. */
function rejects(text: string, file: string, line: number, env: Record<string, string> = {}): ConfigError {
  let caught: unknown;
  try {
    parseConfig(text, file, env);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for:\n${text}\ngot ${String(caught)}`);
  assert.equal(caught.file, file);
  assert.ok(caught.message.includes(file), `message does not name the file: ${caught.message}`);
  assert.ok(
    caught.problems.some((problem) => problem.includes(`${file}:${line}:`)),
    `no problem points at ${file}:${line}:\n${caught.message}`,
  );
  return caught;
}

function problemAt(error: ConfigError, file: string, line: number): string {
  const problem = error.problems.find((p) => p.includes(`${file}:${line}:`));
  assert.ok(problem, `no problem at line ${line}: ${error.message}`);
  return problem;
}

// --- the shipped config and defaults --------------------------------------------------------

test('conf/switchyard.yaml loads and says what it says', () => {
  assert.equal(DEFAULT_CONFIG_FILE, path.join(PROJECT_ROOT, 'conf', 'switchyard.yaml'));
  const config = loadConfig(DEFAULT_CONFIG_FILE, {});
  assert.equal(config.proxy.port, 8080);
  assert.equal(config.proxy.debugHeaders, true);
  assert.equal(config.supervisor.port, 8090);
  assert.deepEqual(Object.keys(config.pools).sort(), ['bot', 'clone', 'web']);
  assert.equal(config.pools.clone.portBase, 9200);
  assert.deepEqual(config.lanes.clone, { pool: 'clone', balance: 'ip-hash', priority: 0, responseTimeoutMs: 1_800_000, spoolBytes: 16 * 1024 * 1024 });
  assert.equal(config.lanes.page.responseTimeoutMs, 30_000);
  assert.ok(config.bots.crawlerUserAgents.includes('Googlebot'), 'crawlers go to the bot lane');
  assert.deepEqual(config.lanes.bot, { pool: 'bot', balance: 'least-outstanding', priority: 0, responseTimeoutMs: 1_800_000, spoolBytes: 16 * 1024 * 1024 });
  assert.ok(config.lanes.browser.priority < config.lanes.page.priority, 'browser must be served before page');
  assert.deepEqual(config.classify, DEFAULT_RULES);
  assert.equal(config.data, path.join(PROJECT_ROOT, 'var'));
  assert.equal(config.proxy.static.root, path.join(PROJECT_ROOT, 'worker', 'public'));
});

test('an empty file (or only comments) is a valid config with the defaults', () => {
  for (const text of ['', '\n', '# nothing here\n# at all\n', '---\n']) {
    const config = parseConfig(text, 'empty.yaml', {});
    assert.equal(config.proxy.port, 8080);
    assert.equal(config.proxy.host, '0.0.0.0');
    assert.equal(config.proxy.static.prefix, '/_static/');
    assert.deepEqual(Object.keys(config.pools).sort(), ['bot', 'clone', 'web']);
    assert.equal(config.pools.web.concurrency, 1);
    assert.equal(config.pools.clone.queue.timeoutMs, 30_000);
    assert.deepEqual(config.classify, DEFAULT_RULES);
    assert.deepEqual(config.bots.cidrs, []);
    assert.ok(config.bots.userAgents.includes('Jenkins'));
    assert.equal(config.lanes.clone.balance, 'ip-hash');
    assert.equal(config.data, path.join(PROJECT_ROOT, 'var'));
  }
  const file = writeConfig('empty.yaml', '');
  assert.equal(loadConfig(file, {}).proxy.port, 8080);
  assert.equal(validateConfig({}, 'test').proxy.port, 8080);
});

test('given keys override defaults and leave siblings at their defaults', () => {
  const config = parseConfig('proxy:\n  port: 8181\n  limits: { maxUrlBytes: 4096 }\npools:\n  web: { concurrency: 3 }\n  clone: {}\n  bot: {}\n', 'f.yaml', {});
  assert.equal(config.proxy.port, 8181);
  assert.equal(config.proxy.host, '0.0.0.0');
  assert.equal(config.proxy.limits.maxUrlBytes, 4096);
  assert.equal(config.proxy.limits.maxHeaderBytes, 16384);
  assert.equal(config.pools.web.concurrency, 3);
  assert.equal(config.pools.web.queue.max, 100);
});

test('classify rules from YAML: header names lowercased, methods uppercased', () => {
  const text = [
    'classify:',
    '  - class: clone',
    '    any:',
    '      - { method: [post], headers: { Content-Type: "^application/x-git-" } }',
    '',
  ].join('\n');
  const config = parseConfig(text, 'rules.yaml', {});
  assert.deepEqual(config.classify, [{ class: 'clone', any: [{ method: ['POST'], headers: { 'content-type': '^application/x-git-' } }] }]);
});

// --- errors: file, line, key, value, expectation ---------------------------------------------

test('wrong type: names file, line, key, the bad value and the expected type', () => {
  const file = 'types.yaml';
  const error = rejects('data: ./var\nproxy:\n  host: 0.0.0.0\n  port: eighty\n', file, 4);
  const problem = problemAt(error, file, 4);
  assert.match(problem, /proxy\.port/);
  assert.match(problem, /"eighty"/);
  assert.match(problem, /expected/i);
  assert.match(problem, /number/);
  assert.match(error.message, /types\.yaml:4: proxy\.port = "eighty": .*expected/);
});

test('out of range and bad enum values are reported with their lines', () => {
  const file = 'range.yaml';
  const text = ['proxy:', '  port: 70000', 'lanes:', '  web: {}', ''].join('\n');
  const error = rejects(text, file, 2);
  assert.match(problemAt(error, file, 2), /proxy\.port = 70000: .*65535/);
  const enumError = rejects('lanes:\n  page:\n    balance: random\n', file, 3);
  const problem = problemAt(enumError, file, 3);
  assert.match(problem, /lanes\.page\.balance = "random"/);
  assert.match(problem, /round-robin/);
  assert.match(problem, /ip-hash/);
  const classError = rejects('classify:\n  - class: robot\n    any: [{ botCidr: true }]\n', file, 2);
  assert.match(problemAt(classError, file, 2), /classify\.0\.class = "robot".*expected/);
});

test('unknown keys (typos) are errors with the line of the typo', () => {
  const file = 'typo.yaml';
  const nested = rejects('proxy:\n  host: 127.0.0.1\n  prot: 8080\n', file, 3);
  assert.match(problemAt(nested, file, 3), /unknown key proxy\.prot/);
  const top = rejects('data: ./var\npool:\n  web: {}\n', file, 2);
  assert.match(problemAt(top, file, 2), /unknown key pool\b/);
  const inPool = rejects('pools:\n  web:\n    instances: 2\n    concurency: 4\n  clone: {}\n  bot: {}\n', file, 4);
  assert.match(problemAt(inPool, file, 4), /unknown key pools\.web\.concurency/);
  const inFlow = rejects('proxy:\n  clients:\n    static: { idleTimeoutMs: 5000, maxRequest: 10 }\n', file, 3);
  assert.match(problemAt(inFlow, file, 3), /unknown key proxy\.clients\.static\.maxRequest/);
  const inRule = rejects('classify:\n  - class: bot\n    any:\n      - userAgent: x\n        useragent: y\n', file, 5);
  assert.match(problemAt(inRule, file, 5), /unknown key classify\.0\.any\.0\.useragent/);
});

test('a bad CIDR is reported with its list position, line and value', () => {
  const file = 'cidr.yaml';
  const error = rejects('bots:\n  cidrs:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n', file, 4);
  const problem = problemAt(error, file, 4);
  assert.match(problem, /bots\.cidrs\.1 = "10\.0\.0\.0\/33"/);
  assert.match(problem, /expected an IP address or CIDR/);
  const trusted = rejects('proxy:\n  port: 8080\n  trustedProxies: [127.0.0.1/32, 300.1.2.3]\n', file, 3);
  assert.match(problemAt(trusted, file, 3), /proxy\.trustedProxies\.1 = "300\.1\.2\.3".*expected/);
  const inRule = rejects('classify:\n  - class: bot\n    any:\n      - cidrs: [not-a-network]\n', file, 4);
  assert.match(problemAt(inRule, file, 4), /classify\.0\.any\.0\.cidrs\.0 = "not-a-network"/);
  // valid forms are accepted
  const ok = parseConfig('bots:\n  cidrs: [10.0.0.0/8, 192.0.2.7, "::1/128", "2001:db8::/32", "::ffff:10.0.0.0/104"]\n', file, {});
  assert.equal(ok.bots.cidrs.length, 5);
});

test('a bad regular expression in a classify rule is reported with its line', () => {
  const file = 'regex.yaml';
  const text = ['classify:', '  - class: bot', '    any:', '      - botCidr: true', '      - userAgent: "(["', ''].join('\n');
  const error = rejects(text, file, 5);
  const problem = problemAt(error, file, 5);
  assert.match(problem, /classify\.0\.any\.1\.userAgent = "\(\["/);
  assert.match(problem, /expected a valid regular expression/);
  const inHeaders = rejects('classify:\n  - class: clone\n    any:\n      - headers: { accept: "*bad" }\n', file, 4);
  assert.match(problemAt(inHeaders, file, 4), /classify\.0\.any\.0\.headers\.accept = "\*bad".*regular expression/);
  const inBots = rejects('bots:\n  userAgents: [Jenkins, "a)"]\n', file, 2);
  assert.match(problemAt(inBots, file, 2), /bots\.userAgents\.1 = "a\)"/);
});

test('a bad pool name is reported with what a pool name must look like', () => {
  const file = 'pools.yaml';
  const error = rejects('pools:\n  web: {}\n  clone: {}\n  bot: {}\n  Extra_Pool: {}\n', file, 5);
  const problem = problemAt(error, file, 5);
  assert.match(problem, /pools\.Extra_Pool/);
  assert.match(problem, /expected a lowercase pool name/, `the expectation is lost: ${problem}`);
});

test('static targets: an empty list and a port past 65535 are reported with their lines', () => {
  const file = 'targets.yaml';
  const empty = rejects('pools:\n  web:\n    targets: []\n', file, 3);
  assert.match(problemAt(empty, file, 3), /pools\.web\.targets.*expected at least one host:port/);
  const text = ['pools:', '  web:', '    targets:', '      - 127.0.0.1:8080', '      - 127.0.0.1:99999', '      - 127.0.0.1:0', ''].join('\n');
  const ports = rejects(text, file, 5);
  assert.match(problemAt(ports, file, 5), /pools\.web\.targets\.1.*99999.*expected a port from 1 to 65535/);
  assert.match(problemAt(ports, file, 6), /pools\.web\.targets\.2.*expected a port from 1 to 65535/);
  assert.equal(parseConfig('pools:\n  web:\n    targets: [127.0.0.1:65535, "[::1]:1"]\n  clone: {}\n  bot: {}\n', file, {}).pools.web.targets?.length, 2);
});

test("the proxy's idle upstream timeout must be well below the supervised workers' keep-alive timeout", () => {
  const file = 'idle.yaml';
  // The margin is the larger of 1 s and a quarter of the proxy's timeout (its sweep runs every eighth).
  const error = rejects('proxy:\n  upstream:\n    idleSocketTimeoutMs: 6000\nworker:\n  keepAliveTimeoutMs: 7000\n', file, 3);
  assert.match(problemAt(error, file, 3), /proxy\.upstream\.idleSocketTimeoutMs: 6000: expected at most 5500, 1500 ms below worker\.keepAliveTimeoutMs \(7000\)/);
  // Only the worker's side set: that is the key named.
  const workerSide = rejects('worker:\n  cacheBytes: 1024\n  keepAliveTimeoutMs: 4500\n', file, 3);
  assert.match(problemAt(workerSide, file, 3), /worker\.keepAliveTimeoutMs: 4500: expected at least 5000/);
  assert.equal(parseConfig('worker:\n  keepAliveTimeoutMs: 10000\nproxy:\n  upstream:\n    idleSocketTimeoutMs: 8000\n', file, {}).worker.keepAliveTimeoutMs, 10000);
  // Static targets only: their keep-alive is not ours to know.
  const targetsOnly = 'proxy:\n  upstream:\n    idleSocketTimeoutMs: 6000\npools:\n  web: { targets: [127.0.0.1:1] }\n  clone: { targets: [127.0.0.1:2] }\n  bot: { targets: [127.0.0.1:3] }\n';
  assert.equal(parseConfig(targetsOnly, file, {}).proxy.upstream.idleSocketTimeoutMs, 6000);
});

test('a lane pointing to a missing pool is reported with the lane line and the pools that exist', () => {
  const file = 'lanes.yaml';
  const text = ['lanes:', '  browser: { pool: web }', '  clone:', '    pool: clones', ''].join('\n');
  const error = rejects(text, file, 4);
  const problem = problemAt(error, file, 4);
  assert.match(problem, /lanes\.clone\.pool/);
  assert.match(problem, /"clones"/);
  assert.match(problem, /expected one of: web, clone, bot/);
  // every lane without its pool is named, each at its own line
  const two = rejects('lanes:\n  bot: { pool: robots }\n  page: { pool: pages }\n', file, 2);
  assert.match(problemAt(two, file, 2), /lanes\.bot\.pool.*"robots"/);
  assert.match(problemAt(two, file, 3), /lanes\.page\.pool.*"pages"/);
});

test('a YAML syntax error is reported with its line', () => {
  const file = 'syntax.yaml';
  const indent = rejects('proxy:\n  port: 8080\n host: 0.0.0.0\nbots: {}\n', file, 3);
  assert.match(problemAt(indent, file, 3), /YAML syntax error/);
  const duplicate = rejects('proxy:\n  port: 8080\n  port: 9090\n', file, 3);
  assert.match(problemAt(duplicate, file, 3), /YAML syntax error/);
  const tab = rejects('proxy:\n  port: 8080\n\thost: x\n', file, 3);
  assert.match(problemAt(tab, file, 3), /YAML syntax error/);
});

test('every problem is listed, not only the first', () => {
  const file = 'many.yaml';
  const text = ['proxy:', '  port: -1', '  hots: x', 'bots:', '  cidrs: [nope]', ''].join('\n');
  const error = rejects(text, file, 2);
  problemAt(error, file, 3);
  problemAt(error, file, 5);
  assert.ok(error.problems.length >= 3, error.message);
});

test('a top level that is not a mapping, and an unreadable file, are ConfigErrors', () => {
  const file = 'list.yaml';
  const error = rejects('- a\n- b\n', file, 1);
  assert.match(error.message, /mapping/);
  const missing = path.join(tmp, 'does-not-exist.yaml');
  assert.throws(() => loadConfig(missing, {}), (thrown: unknown) => thrown instanceof ConfigError && thrown.message.includes(missing));
});

test('validateConfig reports key and value for object input too', () => {
  assert.throws(
    () => validateConfig({ proxy: { port: 'x' } }, 'test'),
    (error: unknown) => error instanceof ConfigError && /test:\?: proxy\.port = "x": .*expected/.test(error.message),
  );
});

// --- environment overrides ------------------------------------------------------------------

test('env overrides: SWITCHYARD_PROXY_PORT, SWITCHYARD_DASHBOARD_PORT, SWITCHYARD_DATA, SWITCHYARD_REPOS', () => {
  const config = loadConfig(DEFAULT_CONFIG_FILE, {
    SWITCHYARD_PROXY_PORT: '9999',
    SWITCHYARD_DASHBOARD_PORT: '8099',
    SWITCHYARD_DATA: path.join(tmp, 'data'),
    SWITCHYARD_REPOS: path.join(tmp, 'repos'),
  });
  assert.equal(config.proxy.port, 9999);
  assert.equal(config.supervisor.port, 8099);
  assert.equal(config.data, path.join(tmp, 'data'));
  assert.equal(config.worker.repos, path.join(tmp, 'repos'));
  // the rest of the file still applies
  assert.equal(config.proxy.debugHeaders, true);
  // an override also works on an empty file and on object input
  assert.equal(parseConfig('', 'e.yaml', { SWITCHYARD_PROXY_PORT: '9999' }).proxy.port, 9999);
  assert.equal(validateConfig({}, 'test', { SWITCHYARD_PROXY_PORT: '9999' }).proxy.port, 9999);
  // empty values are ignored
  assert.equal(loadConfig(DEFAULT_CONFIG_FILE, { SWITCHYARD_PROXY_PORT: '', SWITCHYARD_DATA: '' }).proxy.port, 8080);
  // without overrides nothing changes (and process.env is not consulted when env is given)
  assert.equal(loadConfig(DEFAULT_CONFIG_FILE, {}).proxy.port, 8080);
});

test('SWITCHYARD_CONFIG selects the file', () => {
  assert.equal(configFileFromEnv({}), DEFAULT_CONFIG_FILE);
  const file = writeConfig('other.yaml', 'proxy:\n  port: 8123\n');
  assert.equal(configFileFromEnv({ SWITCHYARD_CONFIG: file }), file);
  assert.equal(loadConfig(configFileFromEnv({ SWITCHYARD_CONFIG: file }), {}).proxy.port, 8123);
});

test('a bad env override is reported with the key and the value it came with', () => {
  let caught: unknown;
  try {
    loadConfig(DEFAULT_CONFIG_FILE, { SWITCHYARD_PROXY_PORT: 'abc' });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `SWITCHYARD_PROXY_PORT=abc was accepted: ${String(caught)}`);
  assert.match(caught.message, /proxy\.port/);
  // the operator typed "abc": the message must show it and say where it came from
  assert.match(caught.message, /abc/, `the bad value is not shown: ${caught.message}`);
  assert.match(caught.message, /SWITCHYARD_PROXY_PORT/, `the env variable is not named: ${caught.message}`);

  // a valid number out of range: the file says 8080, so blaming only the file's line misleads
  assert.throws(
    () => loadConfig(DEFAULT_CONFIG_FILE, { SWITCHYARD_PROXY_PORT: '99999' }),
    (error: unknown) => error instanceof ConfigError && /99999/.test(error.message) && /SWITCHYARD_PROXY_PORT/.test(error.message),
    'SWITCHYARD_PROXY_PORT=99999 must be reported as coming from the environment',
  );
});

test('an env override does not hide a wrong type in the file', () => {
  // without the override `proxy: 5` is rejected; setting SWITCHYARD_PROXY_PORT must not make it valid
  const file = 'scalar.yaml';
  rejects('data: ./var\nproxy: 5\n', file, 2);
  const error = rejects('data: ./var\nproxy: 5\n', file, 2, { SWITCHYARD_PROXY_PORT: '9000' });
  assert.match(problemAt(error, file, 2), /proxy = 5: .*expected object/);
});

// --- paths ----------------------------------------------------------------------------------

test('relative paths are resolved against the project root, absolute ones kept', () => {
  const relative = parseConfig('data: ./state\nproxy:\n  static: { root: public/assets }\nworker:\n  repos: repos/here\n', 'p.yaml', {});
  assert.equal(relative.data, path.join(PROJECT_ROOT, 'state'));
  assert.equal(relative.proxy.static.root, path.join(PROJECT_ROOT, 'public', 'assets'));
  assert.equal(relative.worker.repos, path.join(PROJECT_ROOT, 'repos', 'here'));
  const bare = parseConfig('data: var2\n', 'p.yaml', {});
  assert.equal(bare.data, path.join(PROJECT_ROOT, 'var2'));
  const absolute = parseConfig(`data: ${tmp}\nworker:\n  repos: /srv/repos\n`, 'p.yaml', {});
  assert.equal(absolute.data, tmp);
  assert.equal(absolute.worker.repos, '/srv/repos');
  // not against the current directory: the same config gives the same paths from anywhere
  const cwd = process.cwd();
  try {
    process.chdir(tmp);
    assert.equal(parseConfig('data: ./state\n', 'p.yaml', {}).data, path.join(PROJECT_ROOT, 'state'));
  } finally {
    process.chdir(cwd);
  }
  assert.equal(parseConfig('', 'p.yaml', {}).worker.repos, undefined);
});
