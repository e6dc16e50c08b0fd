// The classifier against the requests real clients send (git, hg, curl), captured by a real HTTP
// server: git smart HTTP through git http-backend, hg through a real hg serve.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startCaptureServer, startHgServe, type CaptureServer, type CapturedRequest, type HgServe } from '../helpers/capture-server.ts';
import {
  addGitCommit,
  addHgCommit,
  available,
  cleanEnv,
  createGitRepo,
  createHgRepo,
  describe as describeRun,
  removeDir,
  run,
  tempDir,
} from '../helpers/capture-clients.ts';
import { assertAll, BOT_TOKEN, classifierWith, show } from '../helpers/classify-captured.ts';

const defaults = classifierWith();
const withBotIp = classifierWith({ bots: { cidrs: ['127.0.0.1/32'] } });
const withBotToken = classifierWith({ bots: { tokens: [BOT_TOKEN] } });

// .ci/run installs every client and sets SWITCHYARD_REQUIRE_CLIENTS: there a missing one fails its test instead of skipping it.
const required = process.env.SWITCHYARD_REQUIRE_CLIENTS === '1';
const have = (command: string) => required || available(command);
const HAVE = { git: have('git'), hg: have('hg'), curl: have('curl') };

describe('requests captured from real clients', () => {
  let work: string;
  let env: Record<string, string>;
  let server: CaptureServer;
  let hgServe: HgServe | undefined;
  let gitRoot: string;
  let hgRepo: string;

  before(async () => {
    work = tempDir('classify');
    env = cleanEnv(path.join(work, 'home'));
    gitRoot = path.join(work, 'git');
    if (HAVE.git) createGitRepo(gitRoot, 'demo-git', env);
    if (HAVE.hg) {
      hgRepo = createHgRepo(path.join(work, 'hg-origin'), env);
      hgServe = await startHgServe(hgRepo, 'demo-hg', env);
    }
    server = await startCaptureServer({ gitRoot, hg: hgServe, env });
  });

  after(async () => {
    await server?.close();
    await hgServe?.stop();
    if (work) removeDir(work);
  });

  const git = (args: string[], cwd?: string) => run('git', args, { cwd: cwd ?? work, env, timeoutMs: 20_000 });
  const hg = (args: string[], cwd?: string) => run('hg', args, { cwd: cwd ?? work, env, timeoutMs: 20_000 });

  async function gitClone(label: string, options: string[], cloneArgs: string[] = []): Promise<CapturedRequest[]> {
    const mark = server.mark();
    const target = path.join(work, `clone-${label}`);
    const result = await git([...options, 'clone', '-q', ...cloneArgs, `${server.baseUrl}/demo-git`, target]);
    assert.equal(result.code, 0, `git clone (${label}) failed: ${describeRun(result)}`);
    assert.ok(existsSync(path.join(target, 'README')), `git clone (${label}) produced no checkout`);
    return server.since(mark);
  }

  function assertSmartHttp(requests: CapturedRequest[], label: string): void {
    assert.ok(
      requests.some((r) => r.method === 'GET' && r.url === '/demo-git/info/refs?service=git-upload-pack'),
      `${label}: no ref advertisement request\n${show(requests)}`,
    );
    assert.ok(
      requests.some((r) => r.method === 'POST' && r.url === '/demo-git/git-upload-pack'),
      `${label}: git never went on to POST git-upload-pack\n${show(requests)}`,
    );
  }

  test('git clone (default protocol) is clone; from a bot IP it is bot', { skip: !HAVE.git && 'git is not installed' }, async () => {
    const requests = await gitClone('default', []);
    assertSmartHttp(requests, 'git clone');
    assert.match(String(requests[0].headers['user-agent']), /^git\//);
    assertAll(defaults, requests, 'clone', 'git clone');
    // bots.cidrs contains 127.0.0.1/32: the very same requests are a bot's
    assertAll(withBotIp, requests, 'bot', 'git clone from a bot IP');
  });

  test('git clone -c protocol.version=2 is clone', { skip: !HAVE.git && 'git is not installed' }, async () => {
    const requests = await gitClone('v2', ['-c', 'protocol.version=2']);
    assertSmartHttp(requests, 'git clone v2');
    assert.ok(
      requests.some((r) => r.headers['git-protocol'] === 'version=2'),
      `git did not ask for protocol v2\n${show(requests)}`,
    );
    assert.ok(
      requests.some((r) => r.method === 'POST' && String(r.headers['content-type']).startsWith('application/x-git-upload-pack-request')),
      `no upload-pack request body\n${show(requests)}`,
    );
    assertAll(defaults, requests, 'clone', 'git clone v2');
  });

  test('git clone -c protocol.version=0 is clone', { skip: !HAVE.git && 'git is not installed' }, async () => {
    const requests = await gitClone('v0', ['-c', 'protocol.version=0']);
    assertSmartHttp(requests, 'git clone v0');
    assertAll(defaults, requests, 'clone', 'git clone v0');
  });

  test('git clone --depth 1 is clone', { skip: !HAVE.git && 'git is not installed' }, async () => {
    const requests = await gitClone('shallow', [], ['--depth', '1']);
    assertSmartHttp(requests, 'git clone --depth 1');
    assertAll(defaults, requests, 'clone', 'git clone --depth 1');
  });

  test('git fetch is clone', { skip: !HAVE.git && 'git is not installed' }, async () => {
    await gitClone('for-fetch', []);
    addGitCommit(path.join(gitRoot, 'demo-git'), env, 'fetched.txt');
    const mark = server.mark();
    const result = await git(['fetch', '-q', 'origin'], path.join(work, 'clone-for-fetch'));
    assert.equal(result.code, 0, `git fetch failed: ${describeRun(result)}`);
    const requests = server.since(mark);
    assertSmartHttp(requests, 'git fetch');
    assertAll(defaults, requests, 'clone', 'git fetch');
    const log = await git(['log', '--oneline', 'origin/main'], path.join(work, 'clone-for-fetch'));
    assert.match(log.stdout, /add fetched\.txt/, 'the fetch did not bring the new commit');
  });

  test('git clone with a CI user agent is bot', { skip: !HAVE.git && 'git is not installed' }, async () => {
    const requests = await gitClone('jenkins', ['-c', 'http.userAgent=Jenkins/2.4 git/2.39']);
    assertSmartHttp(requests, 'Jenkins git clone');
    assert.ok(requests.every((r) => r.headers['user-agent'] === 'Jenkins/2.4 git/2.39'), show(requests));
    assertAll(defaults, requests, 'bot', 'Jenkins git clone');
  });

  test('git clone with the bot token header is bot (only when the token is configured)', { skip: !HAVE.git && 'git is not installed' }, async () => {
    const requests = await gitClone('token', ['-c', `http.extraHeader=X-Switchyard-Bot-Token: ${BOT_TOKEN}`]);
    assertSmartHttp(requests, 'git clone with token');
    assert.ok(requests.every((r) => r.headers['x-switchyard-bot-token'] === BOT_TOKEN), show(requests));
    assertAll(withBotToken, requests, 'bot', 'git clone with a configured bot token');
    assertAll(defaults, requests, 'clone', 'git clone with a token nobody configured');
    assertAll(classifierWith({ bots: { tokens: ['some-other-token'] } }), requests, 'clone', 'git clone with a wrong token');
  });

  test('hg clone and hg pull are clone', { skip: !HAVE.hg && 'hg is not installed' }, async () => {
    const target = path.join(work, 'hg-clone');
    let mark = server.mark();
    const cloned = await hg(['clone', '-q', `${server.baseUrl}/demo-hg`, target]);
    assert.equal(cloned.code, 0, `hg clone failed: ${describeRun(cloned)}`);
    assert.ok(existsSync(path.join(target, 'README')), 'hg clone produced no checkout');
    const cloneRequests = server.since(mark);
    assert.ok(
      cloneRequests.some((r) => r.method === 'GET' && r.url.startsWith('/demo-hg') && new URLSearchParams(r.url.split('?')[1]).get('cmd') === 'capabilities'),
      `hg never asked for capabilities\n${show(cloneRequests)}`,
    );
    assert.ok(
      cloneRequests.some((r) => /cmd=(getbundle|batch)/.test(r.url)),
      `hg clone went no further than capabilities\n${show(cloneRequests)}`,
    );
    assert.match(String(cloneRequests[0].headers['user-agent']), /^mercurial\//);
    assertAll(defaults, cloneRequests, 'clone', 'hg clone');
    assertAll(withBotIp, cloneRequests, 'bot', 'hg clone from a bot IP');

    addHgCommit(hgRepo, env, 'pulled.txt');
    mark = server.mark();
    const pulled = await hg(['pull', '-q'], target);
    assert.equal(pulled.code, 0, `hg pull failed: ${describeRun(pulled)}`);
    const pullRequests = server.since(mark);
    assert.ok(pullRequests.some((r) => /cmd=capabilities/.test(r.url)), show(pullRequests));
    assertAll(defaults, pullRequests, 'clone', 'hg pull');
    const log = await hg(['log', '-r', 'tip', '--template', '{desc}'], target);
    assert.equal(log.stdout, 'add pulled.txt', 'the pull did not bring the new changeset');
  });

  test('curl is page', { skip: !HAVE.curl && 'curl is not installed' }, async () => {
    const mark = server.mark();
    const plain = await run('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', `${server.baseUrl}/page`], { env, timeoutMs: 15_000 });
    assert.equal(plain.code, 0, describeRun(plain));
    const html = await run('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-H', 'Accept: text/html', `${server.baseUrl}/page`], {
      env,
      timeoutMs: 15_000,
    });
    assert.equal(html.code, 0, describeRun(html));
    const requests = server.since(mark);
    assert.equal(requests.length, 2, show(requests));
    assert.match(String(requests[0].headers['user-agent']), /^curl\//);
    assertAll(defaults, requests, 'page', 'curl');
  });
});

