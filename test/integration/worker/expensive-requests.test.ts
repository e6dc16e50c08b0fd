import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { request } from '../../helpers/http.ts';
import { copyOfFixture, descendantsOf, removeDir, run, startWorker, tempDir, waitFor, type RunningWorker } from '../../helpers/worker-harness.ts';

// Requests that cost a worker far more than they cost the client (issue 18): hgweb pages behind
// `?cmd=`, a `cmd` the worker and hgweb read differently, and request bodies that git would
// decompress without limit. Real worker process, real git and hg.

// above http-backend's own 10 MB request buffer, which the worker raises to its limit
const LIMIT = 16 * 1024 * 1024;
const EXTRA_TAGS = 3000;

let worker: RunningWorker;
let data: string;
let repos: string;
let work: string;
let headCommit: string;

const git = (args: string[], cwd?: string) => run('git', args, { cwd });

/** Runs git with `input` on its stdin; resolves with its exit code. */
function gitWithInput(args: string[], input: string | Buffer): Promise<number | null> {
  const child = spawn('git', args, { stdio: ['pipe', 'ignore', 'inherit'] });
  child.stdin.end(input);
  return new Promise((resolve) => child.once('close', resolve));
}

before(async () => {
  ({ data, repos } = await copyOfFixture());
  work = await tempDir('switchyard-expensive-');
  const source = path.join(repos, 'demo-git');
  headCommit = (await git([`--git-dir=${source}`, 'rev-parse', 'HEAD'])).stdout.trim();
  // many refs: a clone's want list is then large enough for git to gzip it
  const updates = Array.from({ length: EXTRA_TAGS }, (_, i) => `create refs/tags/many-${String(i).padStart(4, '0')} ${headCommit}\n`).join('');
  assert.equal(await gitWithInput([`--git-dir=${source}`, 'update-ref', '--stdin'], updates), 0);
  const workerSection: Record<string, number> = { maxRequestBodyBytes: LIMIT };
  worker = await startWorker({ data, repos, worker: workerSection });
});

after(async () => {
  assert.equal(await worker.stop(), 0);
  await removeDir(data);
  await removeDir(work);
});

// --- hg: ?cmd= is the wire protocol and nothing else ------------------------------------------

test('hg ?cmd= refuses hgweb pages with a plain 404, quickly, and still serves the wire protocol', async () => {
  const started = Date.now();
  const annotate = await fetch(`${worker.url}/demo-hg?cmd=annotate&file=data/large.txt&node=tip`);
  const body = await annotate.text();
  assert.equal(annotate.status, 404);
  assert.match(annotate.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(body, /"annotate" is not a Mercurial wire-protocol command/);
  assert.ok(body.length < 1000, `a short refusal, not ${body.length} bytes of HTML`);
  assert.ok(Date.now() - started < 2000, `refused in ${Date.now() - started} ms`);

  for (const command of ['comparison', 'file', 'graph', 'log', 'rev', 'filelog', 'archive', 'static', 'changeset', 'shortlog', 'summary', 'search']) {
    const response = await fetch(`${worker.url}/demo-hg?cmd=${command}&node=tip&file=README`);
    assert.equal(response.status, 404, command);
    assert.match(await response.text(), new RegExp(`"${command}" is not a Mercurial wire-protocol command`));
  }

  const capabilities = await fetch(`${worker.url}/demo-hg?cmd=capabilities`);
  assert.equal(capabilities.status, 200);
  assert.match(await capabilities.text(), /\bbatch\b.*\bunbundle=/);
  const tip = (await run('hg', ['identify', '--id', '-r', 'tip', `${worker.url}/demo-hg`])).stdout.trim();
  assert.equal(tip, (await run('hg', ['--repository', path.join(repos, 'demo-hg'), 'log', '-r', 'tip', '--template', '{node|short}'])).stdout);
});

test('hg: a repeated or disguised cmd is refused with 400, so hgweb never runs another command', async () => {
  // hgweb (Python's parse_qsl) takes the LAST cmd, decodes %63md as cmd and would run unbundle
  const tricks = [
    'cmd=capabilities&cmd=unbundle',
    'cmd=unbundle&cmd=capabilities',
    'cmd=capabilities&CMD=unbundle',
    'cmd=capabilities&%63md=unbundle',
    'cmd=capabilities&cmd+=unbundle',
    'cmd=capabilities;cmd=unbundle',
    '%63md=capabilities',
    'Cmd=capabilities',
    'cmd=capabilit%69es',
    'cmd=capabilities%00',
    'cmd',
    'cmd=',
  ];
  for (const query of tricks) {
    for (const method of ['GET', 'POST']) {
      const response = await fetch(`${worker.url}/demo-hg?${query}`, { method, body: method === 'POST' ? '' : undefined });
      assert.equal(response.status, 400, `${method} ?${query}`);
      assert.match(await response.text(), /exactly one Mercurial command/, query);
    }
  }
  // the single plain form still works, with other parameters around it
  const listkeys = await fetch(`${worker.url}/demo-hg?cmd=listkeys&namespace=bookmarks`, { headers: { 'x-hgarg-1': 'namespace=bookmarks' } });
  assert.equal(listkeys.status, 200);
});

test('hg: a protocol request body over worker.maxRequestBodyBytes is refused with 413', async () => {
  const response = await request(`${worker.url}/demo-hg?cmd=capabilities`, {
    method: 'POST',
    headers: { 'content-type': 'application/mercurial-0.1' },
    body: Buffer.alloc(LIMIT + 1, 'a'),
  });
  assert.equal(response.status, 413);
  assert.match(response.body, /larger than this server accepts/);
});

// --- git: request bodies are decoded by the worker, within a limit ----------------------------

function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}

const v2LsRefs = pktLine('command=ls-refs\n') + pktLine('agent=git/test\n') + '0001' + pktLine('symrefs\n') + pktLine('ref-prefix refs/heads/\n') + '0000';

function uploadPack(body: Buffer | string, headers: Record<string, string> = {}) {
  return request(`${worker.url}/demo-git/git-upload-pack`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-git-upload-pack-request', ...headers },
    body,
    timeoutMs: 30_000,
  });
}

/** No git process below the worker (its long-lived hgweb server, from the hg tests, may run). */
async function noGitChildren(): Promise<boolean> {
  return (await descendantsOf(worker.process.pid!)).every((proc) => !proc.command.startsWith('git'));
}

test('git: a gzip body that inflates past the limit gets 413 at once and its git is killed', async (t) => {
  // the attack: duplicate want lines, tiny gzipped, huge inflated
  const wants = pktLine(`want ${headCommit} ofs-delta\n`) + pktLine(`want ${headCommit}\n`).repeat(2_000_000) + '0000' + pktLine('done\n');
  const bomb = zlib.gzipSync(wants, { level: 9 });
  assert.ok(bomb.length < 400 * 1024 && wants.length > 5 * LIMIT, `${bomb.length} bytes inflating to ${wants.length}`);

  const started = Date.now();
  const response = await uploadPack(bomb, { 'content-encoding': 'gzip' });
  const ms = Date.now() - started;
  t.diagnostic(`${bomb.length} bytes of gzip (${wants.length} inflated): ${response.status} in ${ms} ms`);
  assert.equal(response.status, 413);
  assert.match(response.body, new RegExp(`larger than this server accepts \\(${LIMIT} bytes once decompressed\\)`));
  assert.ok(ms < 3000, `answered in ${ms} ms`);
  assert.ok(await waitFor(noGitChildren, 5000), 'the git child was killed');

  // the worker is free again
  const lsRemote = await git(['ls-remote', `${worker.url}/demo-git`, 'HEAD']);
  assert.match(lsRemote.stdout, new RegExp(`^${headCommit}\\s+HEAD`));
});

test('git: a plain body over the limit gets 413 without reaching git', async () => {
  const response = await uploadPack(Buffer.alloc(LIMIT + 1, '0'));
  assert.equal(response.status, 413);
  assert.match(response.body, new RegExp(`larger than this server accepts \\(${LIMIT} bytes\\)`));
});

test('git: gzip and deflate bodies are decoded (same answer as plain); other encodings 415, corrupt 400', async () => {
  const headers = { 'git-protocol': 'version=2' };
  const plain = await uploadPack(v2LsRefs, headers);
  assert.equal(plain.status, 200);
  assert.match(plain.body, new RegExp(`${headCommit} refs/heads/main`));
  for (const [encoding, body] of [
    ['gzip', zlib.gzipSync(v2LsRefs)],
    ['x-gzip', zlib.gzipSync(v2LsRefs)],
    ['deflate', zlib.deflateSync(v2LsRefs)],
    ['identity', Buffer.from(v2LsRefs)],
  ] as const) {
    const decoded = await uploadPack(body, { ...headers, 'content-encoding': encoding });
    assert.equal(decoded.status, 200, encoding);
    assert.equal(decoded.body, plain.body, encoding);
  }

  for (const encoding of ['br', 'compress', 'gzip, gzip', 'zstd']) {
    const refused = await uploadPack(zlib.gzipSync(v2LsRefs), { ...headers, 'content-encoding': encoding });
    assert.equal(refused.status, 415, encoding);
    assert.match(refused.body, /Content-Encoding is not supported/);
  }
  const corrupt = await uploadPack(Buffer.concat([zlib.gzipSync(v2LsRefs).subarray(0, 10), Buffer.alloc(64, 0xff)]), { ...headers, 'content-encoding': 'gzip' });
  assert.equal(corrupt.status, 400);
  assert.match(corrupt.body, /not valid gzip data/);
  assert.ok(await waitFor(noGitChildren, 5000));
});

test('git: a gzipped v0 body within the limit but over git\'s own 10 MB buffer gets a good pack', async () => {
  // 12 MB inflated: git's default http.maxRequestBuffer would refuse it once decoded by the worker
  const body = pktLine(`want ${headCommit} ofs-delta\n`) + pktLine(`want ${headCommit}\n`).repeat(240_000) + '0000' + pktLine('done\n');
  assert.ok(body.length > 10 * 1024 * 1024 && body.length < LIMIT);
  const response = await fetch(`${worker.url}/demo-git/git-upload-pack`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip' },
    body: zlib.gzipSync(body),
  });
  assert.equal(response.status, 200);
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(bytes.subarray(0, 8).toString(), '0008NAK\n');
  const target = path.join(work, 'v0-pack');
  await git(['init', '-q', '--bare', target]);
  assert.equal(await gitWithInput([`--git-dir=${target}`, 'index-pack', '--stdin'], bytes.subarray(8)), 0);
  assert.equal((await git([`--git-dir=${target}`, 'cat-file', '-t', headCommit])).stdout.trim(), 'commit');
});

test('git clone of a repository with thousands of refs (git gzips its request) works, v0 and v2', async () => {
  const source = path.join(repos, 'demo-git');
  const refsOf = async (gitDir: string) => (await git([`--git-dir=${gitDir}`, 'for-each-ref', '--format=%(refname) %(objectname)'])).stdout;
  const expected = await refsOf(source);
  assert.ok(expected.split('\n').length > EXTRA_TAGS);
  for (const version of ['0', '2']) {
    const target = path.join(work, `mirror-v${version}`);
    const { stderr } = await run('git', ['-c', `protocol.version=${version}`, 'clone', '-q', '--mirror', `${worker.url}/demo-git`, target], {
      env: { GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' },
    });
    assert.match(stderr, /Send header: Content-Encoding: gzip/i, `git ${version} gzipped its upload-pack request`);
    assert.equal(await refsOf(target), expected, `protocol v${version}`);
    await git([`--git-dir=${target}`, 'fsck', '--no-progress']);
  }
});
