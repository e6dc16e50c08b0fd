import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cloneCacheMetrics, countsSince, type Vcs } from '../helpers/clone-cache-metrics.ts';
import { CLONE_FETCH, cloneWith, startCloneFleet, type CloneFleet, type CloneKind } from '../helpers/clone-fleet.ts';
import { startFleetStack } from '../helpers/fleet-stack.ts';
import { waitFor } from '../helpers/http.ts';
import { verifyGitClone, verifyHgClone } from '../helpers/vcs-clones.ts';
import { copyOfFixture, removeDir, tempDir } from '../helpers/worker-harness.ts';

// Issue 21's stampede: 20 identical clones at once through a real proxy make one worker
// generation (one miss, the rest coalesced or hits, and the workers answer one pack or bundle
// request), and every clone verifies.

const CLONES = 20;
let data: string;
let repos: string;
let work: string;
let serial = 0;
const fresh = (name: string) => path.join(work, `${name}-${++serial}`);

before(async () => {
  ({ data, repos } = await copyOfFixture());
  work = await tempDir('switchyard-clone-stampede-');
});
after(async () => {
  await removeDir(data);
  await removeDir(work);
});

const vcsOf = (kind: CloneKind): Vcs => kind.vcs;
const repoOf = (kind: CloneKind) => (kind.vcs === 'git' ? 'demo-git' : 'demo-hg');
const labelOf = (kind: CloneKind) => (kind.vcs === 'git' ? `git (protocol v${kind.protocol})` : 'hg');

async function verify(kind: CloneKind, dirs: string[]): Promise<void> {
  const source = path.join(repos, repoOf(kind));
  // a few at a time: fsck of 20 clones at once would only compete for the 2 cores
  for (let i = 0; i < dirs.length; i += 4) {
    await Promise.all(dirs.slice(i, i + 4).map((dir) => (kind.vcs === 'git' ? verifyGitClone(dir, source) : verifyHgClone(dir, source))));
  }
}

/**
 * Requests each clone makes to a worker besides its pack or bundle, learnt from one more clone
 * of the same repository (`shared`: whether that clone's pack or bundle came from the cache).
 */
async function otherRequestsPerClone(fleet: CloneFleet, kind: CloneKind, shared: boolean): Promise<number> {
  const servedBefore = await fleet.served();
  await cloneWith(kind, `${fleet.url}/${repoOf(kind)}`, fresh('probe'));
  return (await fleet.served()) - servedBefore - (shared ? 0 : 1);
}

describe('20 identical git clones at once', () => {
  let fleet: CloneFleet;
  before(async () => {
    fleet = await startCloneFleet({ data, repos });
  });
  after(async () => {
    await fleet.stop();
  });

  for (const kind of [{ vcs: 'git', protocol: 0 }, { vcs: 'git', protocol: 2 }] as const) {
    test(`${labelOf(kind)}: one worker generation, every clone verifies`, async () => {
      const servedBefore = await fleet.served();
      const before = await fleet.counts('git');
      const dirs = Array.from({ length: CLONES }, () => fresh(`git-v${kind.protocol}`));
      await Promise.all(dirs.map((dir) => cloneWith(kind, `${fleet.url}/demo-git`, dir)));
      const served = (await fleet.served()) - servedBefore;
      const counted = countsSince(before, await fleet.counts('git'));
      assert.equal(counted.miss, 1, `one generation: ${JSON.stringify(counted)}`);
      assert.equal(counted.coalesced + counted.hit, CLONES - 1, `the others shared it: ${JSON.stringify(counted)}`);

      const perClone = await otherRequestsPerClone(fleet, kind, true);
      assert.equal(served, CLONES * perClone + 1, `the workers answered one pack request (and ${perClone} other request(s) per clone)`);
      await verify(kind, dirs);
    });
  }
});

describe('20 identical hg clones at once', () => {
  let fleet: CloneFleet;
  before(async () => {
    // The bundle is held mid-body until all 20 have asked for it: hg's clone asks for bookmarks
    // and phases, so its bundle is only shared while it is being produced, and 20 hg clients
    // take longer to start than a small bundle takes to produce.
    fleet = await startCloneFleet({ data, repos, gate: { holds: CLONE_FETCH, afterBytes: 256 * 1024 } });
  });
  after(async () => {
    await fleet.stop();
  });

  test('hg: one getbundle generation, every clone verifies', async () => {
    const kind: CloneKind = { vcs: 'hg' };
    const servedBefore = await fleet.served();
    const before = await fleet.counts('hg');
    const dirs = Array.from({ length: CLONES }, () => fresh('hg'));
    let failure: unknown;
    const clones = dirs.map((dir) => {
      const clone = cloneWith(kind, `${fleet.url}/demo-hg`, dir);
      clone.catch((error: unknown) => (failure ??= error));
      return clone;
    });
    try {
      await waitFor(
        async () => {
          if (failure) throw failure;
          const counted = countsSince(before, await fleet.counts('hg'));
          if (counted.miss > 1) throw new Error(`more than one generation: ${JSON.stringify(counted)}`);
          return counted.miss + counted.coalesced >= CLONES;
        },
        `all ${CLONES} getbundle requests in, sharing the one held generation`,
        240_000,
      );
    } finally {
      for (const gate of fleet.gates) gate.open();
      await Promise.allSettled(clones);
    }
    await Promise.all(clones);
    const served = (await fleet.served()) - servedBefore;
    assert.deepEqual(countsSince(before, await fleet.counts('hg')), { miss: 1, coalesced: CLONES - 1, hit: 0, bypass: 0 });

    const perClone = await otherRequestsPerClone(fleet, kind, false);
    assert.equal(served, CLONES * perClone + 1, `the workers answered one getbundle (and ${perClone} other request(s) per clone)`);
    await verify(kind, dirs);
  });
});

describe('under PM2, as npm start runs it', () => {
  test("the clone cache series reach the supervisor's /metrics", async () => {
    const lane = { pool: 'clone', balance: 'least-outstanding' };
    const stack = await startFleetStack({ pools: { web: { instances: 1 }, clone: { instances: 1 } }, lanes: { clone: lane, bot: lane } });
    try {
      const kind: CloneKind = { vcs: 'git', protocol: 2 };
      for (const dir of [fresh('pm2-git'), fresh('pm2-git')]) await cloneWith(kind, `${stack.proxyUrl}/demo-git`, dir);
      const text = (await stack.api('GET', '/metrics')).body as string;
      const metrics = cloneCacheMetrics(text);
      assert.deepEqual(
        [...metrics.present].sort(),
        ['switchyard_clone_cache_disk_bytes', 'switchyard_clone_cache_entries', 'switchyard_clone_cache_requests_total', 'switchyard_clone_cache_served_bytes_total'],
      );
      assert.equal(metrics.requests.git.miss, 1);
      assert.equal(metrics.requests.git.hit, 1);
      assert.ok(metrics.servedBytes.git > 0 && metrics.diskBytes > 0 && metrics.entries === 1, JSON.stringify({ ...metrics, present: undefined }));
    } finally {
      await stack.stop();
    }
  });
});
