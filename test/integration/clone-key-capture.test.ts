import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { cloneKeyOf, type CloneKey, type CloneRequest } from '../../proxy/clone-sharing/clone-key.ts';
import { copyOfFixture, removeDir, run, startWorker, tempDir, type RunningWorker } from '../helpers/worker-harness.ts';

// Real git and hg clients clone from the reference worker through a recording proxy; the requests
// they send are keyed as the proxy's clone-sharing stage keys them.

const LIMITS = { maxDecodedBytes: 1 << 20 };
const AUTHOR = ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid'];

interface Recorder {
  url: string;
  /** the requests the recorder saw while `client` ran */
  during(client: () => Promise<unknown>): Promise<CloneRequest[]>;
  close(): Promise<void>;
}

/** A proxy to the worker that keeps every request whole, as the proxy's body stage would hold it. */
async function startRecorder(workerPort: number): Promise<Recorder> {
  const requests: CloneRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://recorder');
      requests.push({
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: url.search.slice(1),
        headers: { ...req.headers },
        body: body.length > 0 ? body : undefined,
      });
      const upstream = http.request({ host: '127.0.0.1', port: workerPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async during(client) {
      const mark = requests.length;
      await client();
      return requests.slice(mark);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const isGitData = (request: CloneRequest) => request.path.endsWith('/git-upload-pack');
const isGetbundle = (request: CloneRequest) => request.query.includes('cmd=getbundle');

/** The key of the one request of the data phase among `requests` (the last one, for git v2). */
function dataKey(requests: CloneRequest[], isData: (request: CloneRequest) => boolean): CloneKey {
  const data = requests.filter(isData);
  assert.ok(data.length > 0, `a data request among ${requests.map((request) => `${request.method} ${request.path}?${request.query}`).join(', ')}`);
  const key = cloneKeyOf(data[data.length - 1], LIMITS);
  assert.ok(key, 'the data request is counted');
  return key;
}

function sharedKey(key: CloneKey): string {
  assert.ok(key.share, `shared: ${JSON.stringify(key)}`);
  return key.key;
}

describe('clone keys of the requests real git and hg clients send', () => {
  let worker: RunningWorker;
  let recorder: Recorder;
  let data: string;
  let repos: string;
  let work: string;
  let clones = 0;

  before(async () => {
    ({ data, repos } = await copyOfFixture());
    // a repository with many refs: a clone's want list is then over 1 KiB and git gzips it
    await cp(path.join(repos, 'demo-git'), path.join(repos, 'many-refs-git'), { recursive: true });
    const head = (await run('git', ['--git-dir', path.join(repos, 'many-refs-git'), 'rev-parse', 'HEAD'])).stdout.trim();
    const updates = Array.from({ length: 40 }, (_, index) => `create refs/tags/many-${index} ${head}\n`).join('');
    await writeFile(path.join(data, 'tags'), updates);
    await run('sh', ['-c', `git --git-dir="$1" update-ref --stdin < "$2"`, 'sh', path.join(repos, 'many-refs-git'), path.join(data, 'tags')]);
    work = await tempDir('switchyard-clone-key-');
    worker = await startWorker({ data, repos });
    recorder = await startRecorder(worker.port);
  });
  after(async () => {
    await recorder?.close();
    await worker?.stop();
    await removeDir(data);
    await removeDir(work);
  });

  const target = () => path.join(work, `clone-${++clones}`);
  const gitClone = (args: string[], dir = target()) => recorder.during(() => run('git', [...args, 'clone', '-q', `${recorder.url}/demo-git`, dir]));
  const dataKeyOfGitClone = async (args: string[]) => dataKey(await gitClone(args), isGitData);

  /** A new commit on main of the served demo-git, pushed there from a clone of it. */
  async function commitToDemoGit(): Promise<void> {
    const dir = target();
    await run('git', ['clone', '-q', path.join(repos, 'demo-git'), dir]);
    await writeFile(path.join(dir, `new-${clones}.txt`), 'new\n');
    await run('git', ['add', '.'], { cwd: dir });
    await run('git', [...AUTHOR, 'commit', '-q', '-m', 'new'], { cwd: dir });
    await run('git', ['push', '-q', 'origin', 'HEAD:main'], { cwd: dir });
  }

  for (const [name, protocol] of [
    ['v0', ['-c', 'protocol.version=0']],
    ['v2', ['-c', 'protocol.version=2']],
  ] as const) {
    test(`git ${name}: identical clones share a key, a new commit gives another, a fetch with haves bypasses`, async () => {
      const first = sharedKey(await dataKeyOfGitClone([...protocol]));
      const fetcher = target();
      const second = sharedKey(dataKey(await gitClone([...protocol], fetcher), isGitData));
      assert.equal(second, first, 'two identical clones');
      await commitToDemoGit();
      const afterCommit = sharedKey(await dataKeyOfGitClone([...protocol]));
      assert.notEqual(afterCommit, first, 'a clone after a commit wants the new commit');
      const fetch = await recorder.during(() => run('git', [...protocol, 'fetch', '-q', 'origin'], { cwd: fetcher }));
      assert.deepEqual(dataKey(fetch, isGitData), { vcs: 'git', share: false, reason: 'incremental' });
    });
  }

  test('git: v0 and v2 clones of the same refs differ; v2 ls-refs bypasses', async () => {
    const v0 = sharedKey(await dataKeyOfGitClone(['-c', 'protocol.version=0']));
    const v2Requests = await gitClone(['-c', 'protocol.version=2']);
    const [lsRefs] = v2Requests.filter(isGitData);
    assert.deepEqual(cloneKeyOf(lsRefs, LIMITS), { vcs: 'git', share: false, reason: 'ls-refs' });
    assert.notEqual(sharedKey(dataKey(v2Requests, isGitData)), v0);
  });

  test('git: a gzipped request body has the key of the same body plain', async () => {
    for (const protocol of ['0', '2']) {
      const requests = await recorder.during(() =>
        run('git', ['-c', `protocol.version=${protocol}`, 'clone', '-q', '--bare', `${recorder.url}/many-refs-git`, target()]),
      );
      const gzipped = requests.filter(isGitData).at(-1)!;
      assert.equal(gzipped.headers['content-encoding'], 'gzip', `git ${protocol} gzipped its request`);
      const plain: CloneRequest = { ...gzipped, headers: { ...gzipped.headers, 'content-encoding': undefined }, body: zlib.gunzipSync(gzipped.body!) };
      assert.equal(sharedKey(cloneKeyOf(gzipped, LIMITS)!), sharedKey(cloneKeyOf(plain, LIMITS)!), `protocol ${protocol}`);
    }
  });

  test('git: the same Authorization shares a key, another one does not', async () => {
    const withHeader = (value: string) => dataKeyOfGitClone(['-c', `http.extraHeader=Authorization: ${value}`]);
    const alice = sharedKey(await withHeader('Basic YWxpY2U6MQ=='));
    assert.equal(sharedKey(await withHeader('Basic YWxpY2U6MQ==')), alice);
    assert.notEqual(sharedKey(await withHeader('Basic Ym9iOjI=')), alice);
    assert.notEqual(sharedKey(await dataKeyOfGitClone([])), alice);
  });

  test('hg: identical clones share a key (coalesced only: bookmarks and phases), a commit gives another, a pull bypasses', async () => {
    const hgClone = (dir = target()) => recorder.during(() => run('hg', ['clone', '-q', `${recorder.url}/demo-hg`, dir]));
    const puller = target();
    const first = dataKey(await hgClone(puller), isGetbundle);
    assert.equal(first.share && first.retain, false, 'hg clones ask for bookmarks and phases: not retained');
    assert.equal(sharedKey(dataKey(await hgClone(), isGetbundle)), sharedKey(first), 'two identical clones');
    const served = path.join(repos, 'demo-hg');
    await writeFile(path.join(served, `new-${clones}.txt`), 'new\n');
    await run('hg', ['commit', '-q', '-A', '-u', 'Test', '-m', 'new'], { cwd: served });
    assert.notEqual(sharedKey(dataKey(await hgClone(), isGetbundle)), sharedKey(first), 'a clone after a commit names the new head');
    const pull = await recorder.during(() => run('hg', ['pull', '-q'], { cwd: puller }));
    assert.deepEqual(dataKey(pull, isGetbundle), { vcs: 'hg', share: false, reason: 'incremental' });
  });
});
