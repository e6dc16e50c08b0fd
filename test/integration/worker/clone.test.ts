import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { copyOfFixture, removeDir, run, runFailing, startWorker, tempDir, type RunningWorker } from '../../helpers/worker-harness.ts';

// Real git and hg clients against a worker directly. (Through-the-proxy variants live with the
// proxy's integration tests.)

let worker: RunningWorker;
let data: string;
let repos: string;
let work: string;

before(async () => {
  ({ data, repos } = await copyOfFixture());
  work = await tempDir('switchyard-clones-');
  worker = await startWorker({ data, repos });
});

after(async () => {
  assert.equal(await worker.stop(), 0);
  await removeDir(data);
  await removeDir(work);
});

const git = (args: string[], cwd?: string) => run('git', args, { cwd });
const hg = (args: string[], cwd?: string) => run('hg', args, { cwd });

async function gitRefs(gitDir: string, pattern: string): Promise<string> {
  return (await git([`--git-dir=${gitDir}`, 'for-each-ref', '--format=%(refname:lstrip=2) %(objectname)', pattern])).stdout;
}

async function addGitCommit(message: string): Promise<string> {
  const checkout = path.join(work, `writer-${Date.now()}`);
  await git(['clone', '-q', path.join(repos, 'demo-git'), checkout]);
  await git(['-c', 'user.name=T', '-c', 'user.email=t@example.org', 'commit', '-q', '--allow-empty', '-m', message], checkout);
  await git(['push', '-q', 'origin', 'HEAD:main'], checkout);
  return (await git(['rev-parse', 'HEAD'], checkout)).stdout.trim();
}

test('git clone (protocol v2): fsck clean, same branches and tags as the source', async () => {
  const target = path.join(work, 'git-v2');
  await git(['-c', 'protocol.version=2', 'clone', '-q', '--mirror', `${worker.url}/demo-git`, target]);
  await git([`--git-dir=${target}`, 'fsck', '--strict', '--no-progress']);
  const source = path.join(repos, 'demo-git');
  assert.equal(await gitRefs(target, 'refs/heads'), await gitRefs(source, 'refs/heads'));
  const advertisement = await fetch(`${worker.url}/demo-git/info/refs?service=git-upload-pack`, { headers: { 'git-protocol': 'version=2' } });
  assert.match(await advertisement.text(), /version 2/);
  assert.equal(await gitRefs(target, 'refs/tags'), await gitRefs(source, 'refs/tags'));
});

test('git clone with protocol v0 and a shallow clone', async () => {
  const full = path.join(work, 'git-v0');
  await git(['-c', 'protocol.version=0', 'clone', '-q', `${worker.url}/demo-git`, full]);
  await git(['fsck', '--no-progress'], full);
  assert.ok(Number((await git(['rev-list', '--count', 'HEAD'], full)).stdout) >= 300);

  const shallow = path.join(work, 'git-shallow');
  await git(['clone', '-q', '--depth=3', `${worker.url}/demo-git`, shallow]);
  assert.equal((await git(['rev-list', '--count', 'HEAD'], shallow)).stdout.trim(), '3');
  assert.equal((await git(['rev-parse', '--is-shallow-repository'], shallow)).stdout.trim(), 'true');
  await git(['fsck', '--no-progress'], shallow);
});

test('git fetch picks up new commits', async () => {
  const clone = path.join(work, 'git-fetch');
  await git(['clone', '-q', `${worker.url}/demo-git`, clone]);
  const newHead = await addGitCommit('a new commit to fetch');
  await git(['fetch', '-q', 'origin'], clone);
  assert.equal((await git(['rev-parse', 'origin/main'], clone)).stdout.trim(), newHead);
  await git(['fsck', '--no-progress'], clone);
});

test('git push is refused with 403 and a clear message', async () => {
  const clone = path.join(work, 'git-push');
  await git(['clone', '-q', `${worker.url}/demo-git`, clone]);
  await git(['-c', 'user.name=T', '-c', 'user.email=t@example.org', 'commit', '-q', '--allow-empty', '-m', 'x'], clone);
  const output = await runFailing('git', ['push', 'origin', 'HEAD:main'], { cwd: clone });
  assert.match(output, /403/);
  assert.match(output, /Push is not allowed/);
  const response = await fetch(`${worker.url}/demo-git/info/refs?service=git-receive-pack`);
  assert.equal(response.status, 403);
  const post = await fetch(`${worker.url}/demo-git/git-receive-pack`, { method: 'POST', body: '0000', headers: { 'content-type': 'application/x-git-receive-pack-request' } });
  assert.equal(post.status, 403);
});

async function hgHeads(repo: string): Promise<string> {
  return (await hg(['--repository', repo, 'heads', '--template', '{node}\n'])).stdout.split('\n').sort().join('\n');
}

test('hg clone: verify clean, same heads, tags and bookmarks as the source', async () => {
  const target = path.join(work, 'hg-clone');
  await hg(['clone', '-q', '-U', `${worker.url}/demo-hg`, target]);
  await hg(['--repository', target, 'verify', '-q']);
  const source = path.join(repos, 'demo-hg');
  assert.equal(await hgHeads(target), await hgHeads(source));
  const list = (repo: string, command: string) => hg(['--repository', repo, command, '--template', '{node} {tag}{bookmark}\n']);
  assert.equal((await list(target, 'tags')).stdout, (await list(source, 'tags')).stdout);
  assert.equal((await list(target, 'bookmarks')).stdout, (await list(source, 'bookmarks')).stdout);
});

test('hg pull picks up new commits', async () => {
  const target = path.join(work, 'hg-pull');
  await hg(['clone', '-q', `${worker.url}/demo-hg`, target]);
  const source = path.join(repos, 'demo-hg');
  await run('sh', ['-c', 'echo pulled >> pulled.txt'], { cwd: source });
  await hg(['--repository', source, 'commit', '-q', '-A', '-u', 'T <t@example.org>', '-m', 'a new commit to pull']);
  await hg(['--repository', target, 'pull', '-q']);
  await hg(['--repository', target, 'verify', '-q']);
  assert.equal(await hgHeads(target), await hgHeads(source));
});

test('hg push is refused with 403 and a clear message', async () => {
  const target = path.join(work, 'hg-push');
  await hg(['clone', '-q', `${worker.url}/demo-hg`, target]);
  await run('sh', ['-c', 'echo pushed > pushed.txt'], { cwd: target });
  await hg(['--repository', target, 'commit', '-q', '-A', '-u', 'T <t@example.org>', '-m', 'x']);
  const output = await runFailing('hg', ['--repository', target, 'push']);
  assert.match(output, /HTTP Error 403: Push is not allowed/);
});

test('protocol endpoints of the wrong kind are 404', async () => {
  assert.equal((await fetch(`${worker.url}/demo-hg/info/refs?service=git-upload-pack`)).status, 404);
  assert.equal((await fetch(`${worker.url}/demo-git?cmd=capabilities`)).status, 404);
});
