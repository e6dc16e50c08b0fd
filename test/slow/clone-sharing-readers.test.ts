import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { withDeadline } from '../../lib/deadline.ts';
import { ChildProcesses } from '../../worker/children.ts';
import { createLargeGitRepo, createLargeHgRepo } from '../../worker/seed/large-repos.ts';
import { countsSince } from '../helpers/clone-cache-metrics.ts';
import { CLONE_FETCH, cloneWith, recordCloneFetch, startCloneFleet, type CloneFleet, type CloneKind } from '../helpers/clone-fleet.ts';
import { waitFor } from '../helpers/http.ts';
import { replay, type RecordedRequest, type Replay } from '../helpers/recorded-request.ts';
import { cloneExit, verifyGitClone, verifyHgClone } from '../helpers/vcs-clones.ts';
import { removeDir, tempDir } from '../helpers/worker-harness.ts';

// Shared clone generations with readers of every pace, and a generation whose worker dies.
// The repositories hold 24 MB of random bytes, far more than the socket buffers between a worker
// and the proxy, so a worker held at the gate (or killed) really is mid-pack.

const CONTENT_BYTES = 24 * 1024 * 1024;
/** how long a reader of a failed generation may take to learn its fate */
const OUTCOME_MS = 120_000;
const GIT: CloneKind = { vcs: 'git', protocol: 2 };
const HG: CloneKind = { vcs: 'hg' };
const repoOf = (kind: CloneKind) => (kind.vcs === 'git' ? 'big-git' : 'big-hg');

let data: string;
let repos: string;
let work: string;
let serial = 0;
const fresh = (name: string) => path.join(work, `${name}-${++serial}`);

before(async () => {
  data = await tempDir('switchyard-clone-readers-');
  repos = path.join(data, 'repos');
  work = path.join(data, 'work');
  const children = new ChildProcesses();
  await createLargeGitRepo(children, path.join(repos, 'big-git'), CONTENT_BYTES, 4);
  await createLargeHgRepo(children, path.join(repos, 'big-hg'), CONTENT_BYTES, 4);
});
after(async () => {
  await removeDir(data);
});

const verify = (kind: CloneKind, dir: string) => (kind.vcs === 'git' ? verifyGitClone : verifyHgClone)(dir, path.join(repos, repoOf(kind)));

async function inflight(fleet: CloneFleet): Promise<number> {
  return (await Promise.all(fleet.cloneWorkers.map(async (worker) => (await worker.health()).inflight))).reduce((a, b) => a + b, 0);
}

describe('slow and fast readers of one generation', () => {
  let fleet: CloneFleet;
  let recorded: RecordedRequest;
  before(async () => {
    fleet = await startCloneFleet({ data, repos });
    recorded = await recordCloneFetch(fleet.cloneWorkers[0].port, GIT, 'big-git', fresh('record'));
  });
  after(async () => {
    await fleet.stop();
  });

  test("a slow reader that started the generation slows neither it nor the fast clones, and reads the same bytes", async () => {
    const before = await fleet.counts('git');
    const slow = replay(fleet.proxy.port, recorded, { bytesPerSec: 32 * 1024 });
    try {
      assert.equal((await slow.response).headers['x-switchyard-clone-cache'], 'miss', 'the slow reader is the generation');
      const dirs = [fresh('fast'), fresh('fast'), fresh('fast')];
      const fastRaw = replay(fleet.proxy.port, recorded);
      await Promise.all(dirs.map((dir) => cloneWith(GIT, `${fleet.url}/big-git`, dir)));
      const fast = await fastRaw.outcome;
      assert.ok(fast.complete && fast.bytes > CONTENT_BYTES, `the fast reader got the whole pack: ${JSON.stringify(fast)}`);
      assert.equal(slow.settled, false, 'the fast clones finished while the slow reader was still reading');
      assert.ok(slow.bytes < fast.bytes / 2, `the slow reader has read ${slow.bytes} bytes so far`);
      // the pack is produced: no worker is held for the slow reader
      await waitFor(async () => (await inflight(fleet)) === 0, 'the clone workers idle while the slow reader reads');
      assert.equal(slow.settled, false);

      const counted = countsSince(before, await fleet.counts('git'));
      assert.equal(counted.miss, 1, JSON.stringify(counted));
      assert.equal(counted.coalesced + counted.hit, dirs.length + 1, JSON.stringify(counted));

      slow.readFreely();
      const slowEnd = await slow.outcome;
      assert.ok(slowEnd.complete, JSON.stringify(slowEnd));
      assert.equal(slowEnd.bytes, fast.bytes);
      assert.equal(slowEnd.sha256, fast.sha256, 'the slow reader got the same bytes');
      for (const dir of dirs) await verify(GIT, dir);
    } finally {
      slow.abort();
    }
  });
});

/** Identical readers of one generation that the gate holds in flight, and its worker. */
interface HeldGeneration {
  first: Replay;
  followers: Replay[];
  clones: Array<Promise<{ ok: boolean; output: string }>>;
  cloneDirs: string[];
  /** the clone worker whose answer the gate holds */
  heldWorker: number;
}

async function holdGeneration(fleet: CloneFleet, kind: CloneKind, recorded: RecordedRequest): Promise<HeldGeneration> {
  const vcs = kind.vcs;
  const before = await fleet.counts(vcs);
  const first = replay(fleet.proxy.port, recorded);
  await waitFor(() => fleet.gates.some((gate) => gate.holding > 0), 'the gate holds the generation');
  const heldWorker = fleet.gates.findIndex((gate) => gate.holding > 0);
  const cloneDirs = [fresh(`${vcs}-reader`), fresh(`${vcs}-reader`)];
  const clones = cloneDirs.map((dir) => cloneExit(cloneWith(kind, `${fleet.url}/${repoOf(kind)}`, dir)));
  const followers = [replay(fleet.proxy.port, recorded)];
  let counted = countsSince(before, await fleet.counts(vcs));
  await waitFor(
    async () => {
      counted = countsSince(before, await fleet.counts(vcs));
      if (counted.miss > 1 || counted.hit > 0) throw new Error(`the readers did not all join the generation: ${JSON.stringify(counted)}`);
      // a reader is counted once it reads; before the generation's head it is one of /state's waiting
      const waiting: number = (await fleet.proxy.state()).cloneSharing.waiting;
      return counted.coalesced + waiting === followers.length + clones.length;
    },
    'every reader joined the generation',
    120_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(counted)}`);
  });
  return { first, followers, clones, cloneDirs, heldWorker };
}

for (const kind of [GIT, HG]) {
  describe(`${kind.vcs}: a worker killed mid-generation`, () => {
    let fleet: CloneFleet;
    let recorded: RecordedRequest;
    before(async () => {
      fleet = await startCloneFleet({ data, repos, gate: { holds: CLONE_FETCH, afterBytes: 1024 * 1024 } });
      recorded = await recordCloneFetch(fleet.cloneWorkers[0].port, kind, repoOf(kind), fresh('record'));
    });
    after(async () => {
      await fleet.stop();
    });

    test('readers mid-body get an error, nothing is served from the partial file, the next clone works', async () => {
      const held = await holdGeneration(fleet, kind, recorded);
      await waitFor(() => held.first.bytes > 0 && held.followers.every((reader) => reader.bytes > 0), 'the raw readers are mid-body');
      const killed = fleet.cloneWorkers[held.heldWorker];
      await killed.stop('SIGKILL');
      for (const gate of fleet.gates) gate.open();

      for (const reader of [held.first, ...held.followers]) {
        const outcome = await withDeadline(reader.outcome, OUTCOME_MS, 'a reader of the failed generation');
        assert.equal(outcome.status, 200);
        assert.equal(outcome.complete, false, `a reader mid-body is cut, not given a short body: ${JSON.stringify(outcome)}`);
      }
      for (const clone of held.clones) {
        const exit = await withDeadline(clone, OUTCOME_MS, `a ${kind.vcs} clone of the failed generation`);
        assert.equal(exit.ok, false, `${kind.vcs} clone exits non-zero`);
      }

      await waitFor(async () => (await fleet.metrics()).entries === 0, 'the failed generation is no entry');
      const spoolDir = path.join(fleet.dataDir, 'spool', 'clones');
      await waitFor(async () => (await fleet.metrics()).diskBytes === 0 && (await readdir(spoolDir)).length === 0, 'the partial file is gone');

      // The killed worker's relay still accepts connections: the next request may only go once the
      // proxy's health check has taken that worker out (as it would for a dead host).
      const workersDown = async () =>
        (await fleet.proxy.state()).pools.flatMap((pool: { workers: Array<{ state: string }> }) => pool.workers).filter((worker: { state: string }) => worker.state === 'down').length;
      await waitFor(async () => (await workersDown()) === 1, 'the proxy takes the killed worker out');
      const before = await fleet.counts(kind.vcs);
      const next = await replay(fleet.proxy.port, recorded).outcome;
      assert.equal(next.cache, 'miss', 'a fresh generation, not the partial file');
      assert.ok(next.complete && next.bytes > CONTENT_BYTES, JSON.stringify(next));
      const dir = fresh(`${kind.vcs}-after`);
      await cloneWith(kind, `${fleet.url}/${repoOf(kind)}`, dir);
      await verify(kind, dir);
      assert.equal(countsSince(before, await fleet.counts(kind.vcs)).miss, kind.vcs === 'git' ? 1 : 2);
    });
  });
}

describe('git: a worker killed before its answer began', () => {
  let fleet: CloneFleet;
  let recorded: RecordedRequest;
  before(async () => {
    fleet = await startCloneFleet({ data, repos, gate: { holds: CLONE_FETCH, afterBytes: 0 } });
    recorded = await recordCloneFetch(fleet.cloneWorkers[0].port, GIT, 'big-git', fresh('record'));
  });
  after(async () => {
    await fleet.stop();
  });

  test('readers still waiting for it get a fresh generation and complete clones', async () => {
    const held = await holdGeneration(fleet, GIT, recorded);
    assert.ok(held.followers.every((reader) => reader.bytes === 0));
    await fleet.cloneWorkers[held.heldWorker].stop('SIGKILL');
    // what the dead worker had sent never reaches the proxy
    for (const gate of fleet.gates) gate.cut();

    const first = await withDeadline(held.first.outcome, OUTCOME_MS, 'the first reader');
    assert.ok(first.status !== 200 || first.complete, `the first reader gets an error status or a whole pack: ${JSON.stringify(first)}`);
    for (const reader of held.followers) {
      const outcome = await withDeadline(reader.outcome, OUTCOME_MS, 'a waiting reader');
      assert.ok(outcome.status === 200 && outcome.complete && outcome.bytes > CONTENT_BYTES, `a waiting reader gets the fresh generation: ${JSON.stringify(outcome)}`);
    }
    for (const [index, clone] of held.clones.entries()) {
      const exit = await withDeadline(clone, OUTCOME_MS, 'a waiting clone');
      assert.ok(exit.ok, `a waiting clone completes: ${exit.output}`);
      await verify(GIT, held.cloneDirs[index]);
    }
  });
});
