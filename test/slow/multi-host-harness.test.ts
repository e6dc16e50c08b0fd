// The multi-host harness itself (test/helpers/netns.ts, site-stack.ts): a stack inside a network
// namespace answers through the bridge, and nothing a run made outlives it: not its namespaces,
// links, processes or dirs, not even when its process was SIGKILLed (the next run sweeps them).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { request, waitFor } from '../helpers/http.ts';
import { NetnsNetwork, sweepLeftovers } from '../helpers/netns.ts';
import { startSite, type Site } from '../helpers/site-stack.ts';
import { isLive } from '../helpers/stack-processes.ts';
import { gitClone, hgClone } from '../helpers/vcs-clones.ts';
import { removeDir, tempDir } from '../helpers/worker-harness.ts';

const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const links = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });

let site: Site | undefined;
after(async () => {
  await site?.remove();
});

test('a run SIGKILLed before its clean-up is swept by the next one; a live run is left alone', async () => {
  const crashed = spawn(
    process.execPath,
    ['--import', 'tsx', '-e', `import('./test/helpers/netns.ts').then((m) => { console.log(m.NetnsNetwork.create(['a', 'b']).run); setInterval(() => {}, 1000); })`],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let printed = '';
  crashed.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  await waitFor(() => /^[0-9a-z]{5}\n/.test(printed), 'the crashing run to build its network', 30_000);
  const run = printed.trim();
  crashed.kill('SIGKILL');
  await once(crashed, 'exit');
  assert.match(namespaces(), new RegExp(`sy${run}-a`), 'the crashed run left its namespace');
  assert.match(links(), new RegExp(`sy${run}-br`), 'and its bridge');

  const live = NetnsNetwork.create(['a']); // sweeps at start
  try {
    assert.doesNotMatch(namespaces(), new RegExp(`sy${run}-`), 'the leftover namespaces are gone');
    assert.doesNotMatch(links(), new RegExp(`sy${run}-`), 'the leftover links are gone');
    sweepLeftovers();
    assert.match(namespaces(), new RegExp(`${live.host('a').namespace}\\b`), 'a live run keeps its namespace');
    assert.match(links(), new RegExp(`${live.bridge}\\b`), 'and its bridge');
  } finally {
    live.remove();
  }
  assert.doesNotMatch(namespaces() + links(), new RegExp(`sy${live.run}-`), 'remove() leaves nothing');
  assert.equal(existsSync(live.dir), false, 'nor its dir');
});

test('a stack in a namespace serves pages and clones through the bridge, and leaves nothing behind', async () => {
  site = await startSite({ hosts: ['a'], multiHost: false });
  const host = site.host('a');
  const page = await request(`${host.proxyUrl}/`, { headers: { 'x-forwarded-for': '198.51.100.7' } });
  assert.equal(page.status, 200);
  assert.equal(page.headers['x-switchyard-worker'], 'web-0');
  assert.match(page.body, /demo-git/);
  const scratch = await tempDir('switchyard-netns-clones-');
  try {
    await gitClone(`${host.proxyUrl}/demo-git`, path.join(scratch, 'git'), 2);
    await hgClone(`${host.proxyUrl}/demo-hg`, path.join(scratch, 'hg'));
  } finally {
    await removeDir(scratch);
  }

  const pids = site.network.pids('a');
  assert.ok(pids.length >= 5, `pm2-runtime, proxy master and process, supervisor, workers run in the namespace (${pids.length})`);
  const { run, dir } = site.network;
  await site.remove();
  site = undefined;
  assert.deepEqual(pids.filter(isLive), [], 'no process of the host is left');
  assert.doesNotMatch(namespaces() + links(), new RegExp(`sy${run}-`), 'no namespace or link is left');
  assert.equal(existsSync(dir), false, "the hosts' data is gone");
});
