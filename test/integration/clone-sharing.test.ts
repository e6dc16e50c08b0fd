import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { countsSince } from '../helpers/clone-cache-metrics.ts';
import { cloneWith, recordCloneFetch, startCloneFleet, type CloneFleet, type CloneKind } from '../helpers/clone-fleet.ts';
import { replay, type RecordedRequest } from '../helpers/recorded-request.ts';
import { commitToGitRepo, commitToHgRepo, verifyGitClone, verifyHgClone } from '../helpers/vcs-clones.ts';
import { copyOfFixture, removeDir, run, startWorker, tempDir } from '../helpers/worker-harness.ts';

// Clone sharing (issue 21) from the outside: real git and hg clients and recorded-and-replayed
// clone requests through a real proxy process in front of real workers; what is shared is read
// from X-Switchyard-Clone-Cache, the proxy's /metrics and the workers' own request counts.

const GIT_V2: CloneKind = { vcs: 'git', protocol: 2 };
const GIT_V0: CloneKind = { vcs: 'git', protocol: 0 };
const HG: CloneKind = { vcs: 'hg' };

let data: string;
let repos: string;
let work: string;
let serial = 0;
const fresh = (name: string) => path.join(work, `${name}-${++serial}`);
const requests = new Map<string, RecordedRequest>();

before(async () => {
  ({ data, repos } = await copyOfFixture());
  work = await tempDir('switchyard-clone-sharing-');
  const worker = await startWorker({ data, repos });
  try {
    requests.set('git-v2', await recordCloneFetch(worker.port, GIT_V2, 'demo-git', fresh('record')));
    requests.set('git-v0', await recordCloneFetch(worker.port, GIT_V0, 'demo-git', fresh('record')));
  } finally {
    await worker.stop();
  }
});
after(async () => {
  await removeDir(data);
  await removeDir(work);
});

const fetchOf = (name: string) => requests.get(name)!;

// Runs first: the tests after it commit to the repos, and the recorded requests want the old heads.
describe('clone sharing: configuration', () => {
  test('ttlSec 0 only coalesces: the same request after the first is over is a miss again', async () => {
    const fleet = await startCloneFleet({ data, repos, cloneSharing: { ttlSec: 0 } });
    try {
      const servedBefore = await fleet.served();
      const first = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
      const second = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
      assert.deepEqual([first.cache, second.cache], ['miss', 'miss']);
      assert.ok(first.complete && second.complete);
      assert.equal(await fleet.served() - servedBefore, 2);
      assert.equal((await fleet.metrics()).entries, 0, 'nothing is kept');
    } finally {
      await fleet.stop();
    }
  });

  test('enabled: false shares nothing', async () => {
    const fleet = await startCloneFleet({ data, repos, cloneSharing: { enabled: false } });
    try {
      const servedBefore = await fleet.served();
      const first = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
      const second = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
      assert.ok(first.complete && second.complete);
      assert.equal(await fleet.served() - servedBefore, 2, 'both went to a worker');
      assert.notEqual(second.cache, 'hit');
    } finally {
      await fleet.stop();
    }
  });

  test('the spool directory is emptied at start', async () => {
    const dir = path.join(work, 'clone-spool');
    await mkdir(path.join(dir, 'leftover'), { recursive: true });
    await writeFile(path.join(dir, 'stale.pack'), 'from a proxy that crashed');
    await writeFile(path.join(dir, 'leftover', 'x'), 'y');
    const fleet = await startCloneFleet({ data, repos, cloneSharing: { dir } });
    try {
      assert.deepEqual(await readdir(dir), []);
      assert.equal((await fleet.metrics()).diskBytes, 0);
    } finally {
      await fleet.stop();
    }
  });

  test('the disk budget: the least recently used entry goes first', async () => {
    const packSize = await (async () => {
      const worker = await startWorker({ data, repos });
      try {
        return Math.max(...(await Promise.all(['git-v2', 'git-v0'].map(async (name) => (await replay(worker.port, fetchOf(name)).outcome).bytes))));
      } finally {
        await worker.stop();
      }
    })();
    // room for one pack, not two
    const maxDiskBytes = Math.floor(packSize * 1.5);
    const fleet = await startCloneFleet({ data, repos, cloneSharing: { maxDiskBytes } });
    try {
      const cacheOf = async (name: string) => {
        const outcome = await replay(fleet.proxy.port, fetchOf(name)).outcome;
        assert.ok(outcome.complete, `${name} complete`);
        const { diskBytes } = await fleet.metrics();
        assert.ok(diskBytes <= maxDiskBytes, `spool ${diskBytes} bytes within the budget of ${maxDiskBytes}`);
        return outcome.cache;
      };
      assert.equal(await cacheOf('git-v2'), 'miss');
      assert.equal(await cacheOf('git-v2'), 'hit');
      assert.equal(await cacheOf('git-v0'), 'miss');
      assert.equal(await cacheOf('git-v0'), 'hit', 'the newest entry stays');
      assert.equal(await cacheOf('git-v2'), 'miss', 'the older one made room');
      assert.equal((await fleet.metrics()).entries, 1);
    } finally {
      await fleet.stop();
    }
  });
});

describe('clone sharing: what is shared and what is not', () => {
  let fleet: CloneFleet;
  before(async () => {
    fleet = await startCloneFleet({ data, repos });
  });
  after(async () => {
    await fleet.stop();
  });

  test('a full git clone is a miss, the same request again a hit: byte-identical, no worker, counted', async () => {
    const servedBefore = await fleet.served();
    const before = await fleet.metrics();
    const first = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
    assert.equal(first.status, 200);
    assert.equal(first.cache, 'miss');
    assert.ok(first.complete && first.bytes > 100_000, `a complete pack: ${JSON.stringify(first)}`);
    const servedAfterMiss = await fleet.served();
    assert.equal(servedAfterMiss - servedBefore, 1, 'the miss went to a worker');

    const second = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
    assert.equal(second.cache, 'hit');
    assert.ok(second.complete);
    assert.equal(second.sha256, first.sha256, 'the hit is the miss, byte for byte');
    assert.equal(await fleet.served(), servedAfterMiss, 'a hit reaches no worker');

    const metrics = await fleet.metrics();
    assert.deepEqual(countsSince(before.requests.git, metrics.requests.git), { miss: 1, coalesced: 0, hit: 1, bypass: 0 });
    assert.equal(metrics.servedBytes.git - before.servedBytes.git, second.bytes, 'bytes served from the cache: the hit');
    assert.equal(metrics.entries, 1);
    assert.ok(metrics.diskBytes >= first.bytes, `the spool holds the pack: ${metrics.diskBytes} bytes`);
  });

  test('another protocol version is another key; a real git clone shares with its recorded request', async () => {
    const before = await fleet.counts('git');
    const v0 = await replay(fleet.proxy.port, fetchOf('git-v0')).outcome;
    assert.equal(v0.cache, 'miss', 'protocol v0 does not get the v2 pack');
    assert.ok(v0.complete);
    const clone = fresh('git-v0');
    await cloneWith(GIT_V0, `${fleet.url}/demo-git`, clone);
    await verifyGitClone(clone, path.join(repos, 'demo-git'));
    assert.deepEqual(countsSince(before, await fleet.counts('git')), { miss: 1, coalesced: 0, hit: 1, bypass: 0 });
  });

  test('a commit between two clones: the second sees it (a miss), though the first is still within its TTL', async () => {
    const first = fresh('git-first');
    await cloneWith(GIT_V2, `${fleet.url}/demo-git`, first);
    const again = await replay(fleet.proxy.port, fetchOf('git-v2')).outcome;
    assert.equal(again.cache, 'hit', 'the first clone is cached and within its TTL');

    const before = await fleet.counts('git');
    const newHead = await commitToGitRepo(path.join(repos, 'demo-git'), fresh('git-writer'));
    const second = fresh('git-second');
    await cloneWith(GIT_V2, `${fleet.url}/demo-git`, second);
    await verifyGitClone(second, path.join(repos, 'demo-git'));
    assert.equal((await run('git', [`--git-dir=${second}`, 'rev-parse', 'HEAD'])).stdout.trim(), newHead);
    // (protocol v2's ls-refs is a bypass)
    const { miss, coalesced, hit } = countsSince(before, await fleet.counts('git'));
    assert.deepEqual({ miss, coalesced, hit }, { miss: 1, coalesced: 0, hit: 0 });
    assert.equal((await replay(fleet.proxy.port, fetchOf('git-v2')).outcome).cache, 'hit', 'the old request (old wants) still hits the old entry');
  });

  test('hg: a commit between two clones is seen by the second', async () => {
    const first = fresh('hg-first');
    await cloneWith(HG, `${fleet.url}/demo-hg`, first);
    await verifyHgClone(first, path.join(repos, 'demo-hg'));
    const before = await fleet.counts('hg');
    const tip = await commitToHgRepo(path.join(repos, 'demo-hg'));
    const second = fresh('hg-second');
    await cloneWith(HG, `${fleet.url}/demo-hg`, second);
    await verifyHgClone(second, path.join(repos, 'demo-hg'));
    assert.equal((await run('hg', ['--repository', second, 'log', '-r', 'tip', '-T', '{node}'])).stdout, tip);
    const counted = countsSince(before, await fleet.counts('hg'));
    assert.equal(counted.miss, 1, `the second clone's getbundle is a miss: ${JSON.stringify(counted)}`);
    assert.equal(counted.hit, 0);
  });

  test('incremental fetches are bypass and work: git fetch, hg pull', async () => {
    const gitClone = fresh('git-incremental');
    await cloneWith(GIT_V2, `${fleet.url}/demo-git`, gitClone);
    const hgClone = fresh('hg-incremental');
    await cloneWith(HG, `${fleet.url}/demo-hg`, hgClone);
    const newHead = await commitToGitRepo(path.join(repos, 'demo-git'), fresh('git-writer'));
    const tip = await commitToHgRepo(path.join(repos, 'demo-hg'));

    const before = await fleet.metrics();
    await run('git', [`--git-dir=${gitClone}`, '-c', 'protocol.version=2', 'fetch', '-q', 'origin', '+refs/heads/*:refs/heads/*']);
    assert.equal((await run('git', [`--git-dir=${gitClone}`, 'rev-parse', 'HEAD'])).stdout.trim(), newHead);
    await run('git', [`--git-dir=${gitClone}`, 'fsck', '--full', '--no-progress']);
    await run('hg', ['--repository', hgClone, 'pull', '-q']);
    await verifyHgClone(hgClone, path.join(repos, 'demo-hg'));
    assert.equal((await run('hg', ['--repository', hgClone, 'log', '-r', 'tip', '-T', '{node}'])).stdout, tip);

    const after = await fleet.metrics();
    const git = countsSince(before.requests.git, after.requests.git);
    const hg = countsSince(before.requests.hg, after.requests.hg);
    assert.ok(git.bypass >= 1 && git.miss + git.hit + git.coalesced === 0, `git fetch: ${JSON.stringify(git)}`);
    assert.ok(hg.bypass >= 1 && hg.miss + hg.hit + hg.coalesced === 0, `hg pull: ${JSON.stringify(hg)}`);
  });
});
