// Clone throughput: N parallel git and hg clones of a large generated repository (>= 200 MB of
// incompressible content) through Switchyard versus straight to a worker (git http-backend / hgweb)
// and to `hg serve`; then slow readers at 1 MB/s through the proxy while the proxy's and the
// worker's RSS are sampled. Writes the "## Clone throughput (bench/clone)" section of
// docs/benchmarks.md.
//   npx tsx bench/clone/run.ts [--size-mb 200] [--parallel 4] [--slow 4] [--slow-seconds 20]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { ChildProcesses } from '../../worker/children.ts';
import { createLargeGitRepo, createLargeHgRepo } from '../../worker/seed/large-repos.ts';
import { freePort, run, startWorker, type RunningWorker } from '../../test/helpers/worker-harness.ts';
import { replaceSection } from '../lib/markdown-section.ts';
import { fixed, formatTable } from '../lib/table.ts';

const { values: args } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '200' },
    parallel: { type: 'string', default: '4' },
    slow: { type: 'string', default: '4' },
    'slow-seconds': { type: 'string', default: '20' },
    'no-write': { type: 'boolean', default: false },
  },
});
const SIZE = Number(args['size-mb']) * 1024 * 1024;
const PARALLEL = Number(args.parallel);
const SLOW_CLIENTS = Number(args.slow);
const SLOW_SECONDS = Number(args['slow-seconds']);
const MB = 1024 * 1024;

const cacheDir = path.join(PROJECT_ROOT, '.bench-tmp', `clone-repos-${args['size-mb']}mb`);
const repos = path.join(cacheDir, 'repos');
const scratch = path.join(os.tmpdir(), `switchyard-bench-clone-${process.pid}`);
const started: ChildProcess[] = [];

async function ensureRepos(): Promise<void> {
  if (existsSync(path.join(cacheDir, 'complete'))) return;
  await rm(cacheDir, { recursive: true, force: true });
  await mkdir(repos, { recursive: true });
  const children = new ChildProcesses();
  console.error(`generating ${args['size-mb']} MB git and hg repositories in ${cacheDir} ...`);
  await createLargeGitRepo(children, path.join(repos, 'big-git'), SIZE, 20);
  await createLargeHgRepo(children, path.join(repos, 'big-hg'), SIZE, 20);
  await writeFile(path.join(cacheDir, 'complete'), new Date().toISOString());
}

/** Peak RSS (VmHWM) since the last reset, in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)![1]) * 1024;
}
async function currentRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}
async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => {});
}

async function startProxyProcess(targets: string[]): Promise<{ port: number; pid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'bench/clone/proxy-process.ts'), JSON.stringify(targets)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  started.push(child);
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { port: message.port, pid: child.pid! };
}

async function startHgServe(): Promise<{ port: number; pid: number }> {
  const port = await freePort();
  const child = spawn('hg', ['serve', '--repository', path.join(repos, 'big-hg'), '--address', '127.0.0.1', '--port', String(port)], {
    stdio: 'ignore',
    env: { ...process.env, HGRCPATH: '' },
  });
  started.push(child);
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${port}/?cmd=capabilities`).then(() => true, () => false)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { port, pid: child.pid! };
}

interface Measurement {
  seconds: number;
  bytes: number;
}

/** N parallel clones; urls[i] is client i's URL. */
async function parallelClones(kind: 'git' | 'hg', urls: string[]): Promise<Measurement> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const begin = process.hrtime.bigint();
  await Promise.all(
    urls.map((url, i) =>
      kind === 'git'
        ? run('git', ['clone', '--quiet', '--bare', url, path.join(scratch, `c${i}`)])
        : run('hg', ['clone', '--quiet', '--noupdate', url, path.join(scratch, `c${i}`)]),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  const store = kind === 'git' ? path.join(scratch, 'c0', 'objects', 'pack') : path.join(scratch, 'c0', '.hg', 'store');
  const bytes = Number((await run('du', ['-sb', store])).stdout.split('\t')[0]) * urls.length;
  await rm(scratch, { recursive: true, force: true });
  return { seconds, bytes };
}

function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}

/** A git upload-pack response read at bytesPerSecond for seconds, then abandoned. */
function slowClone(port: number, head: string, bytesPerSecond: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/big-git/git-upload-pack', headers: { 'content-type': 'application/x-git-upload-pack-request', 'user-agent': 'git/2.39-bench' } },
      (res) => {
        let received = 0;
        const begin = Date.now();
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          const due = (received / bytesPerSecond) * 1000 - (Date.now() - begin);
          if (due > 0) {
            res.pause();
            setTimeout(() => res.resume(), due);
          }
        });
        setTimeout(() => {
          req.destroy();
          resolve(received);
        }, seconds * 1000);
      },
    );
    req.on('error', reject);
    req.end(`${pktLine(`want ${head}\n`)}0000${pktLine('done\n')}`);
  });
}

async function slowCloneRun(proxy: { port: number; pid: number }, workers: RunningWorker[], head: string) {
  const pids = [proxy.pid, ...workers.map((worker) => worker.process.pid!)];
  const before = await Promise.all(pids.map(currentRss));
  const max = [...before];
  const sampler = setInterval(async () => {
    const now = await Promise.all(pids.map(currentRss));
    now.forEach((value, i) => (max[i] = Math.max(max[i], value)));
  }, 250);
  const received = await Promise.all(Array.from({ length: SLOW_CLIENTS }, () => slowClone(proxy.port, head, MB, SLOW_SECONDS)));
  clearInterval(sampler);
  return {
    received: received.reduce((a, b) => a + b, 0),
    proxyBefore: before[0],
    proxyMax: max[0],
    workersBefore: before.slice(1).reduce((a, b) => a + b, 0),
    workersMax: max.slice(1).reduce((a, b) => a + b, 0),
  };
}

async function main(): Promise<void> {
  await ensureRepos();
  const packBytes = (await stat(path.join(repos, 'big-git'))).isDirectory()
    ? Number((await run('du', ['-sb', path.join(repos, 'big-git', 'objects', 'pack')])).stdout.split('\t')[0])
    : 0;
  const head = (await run('git', ['--git-dir', path.join(repos, 'big-git'), 'rev-parse', 'main'])).stdout.trim();
  const data = path.join(os.tmpdir(), `switchyard-bench-data-${process.pid}`);
  await mkdir(data, { recursive: true });
  const workers: RunningWorker[] = [];
  for (let i = 0; i < PARALLEL; i++) workers.push(await startWorker({ data, repos, env: { LOG_LEVEL: 'warn' } }));
  const targets = workers.map((worker) => `127.0.0.1:${worker.port}`);
  const proxy = await startProxyProcess(targets);
  const hgServe = await startHgServe();
  const direct = (repo: string) => workers.map((worker) => `${worker.url}/${repo}`);
  const viaProxy = (repo: string) => workers.map(() => `http://127.0.0.1:${proxy.port}/${repo}`);

  const rows: string[][] = [];
  const measure = async (label: string, kind: 'git' | 'hg', urls: string[], pids: number[]) => {
    await Promise.all(pids.map(resetPeak));
    const result = await parallelClones(kind, urls);
    const peaks = await Promise.all(pids.map(peakRss));
    console.error(`${label}: ${fixed(result.seconds, 2)} s`);
    rows.push([label, String(urls.length), fixed(result.seconds, 2), fixed(result.bytes / MB / result.seconds, 1), peaks.map((p) => fixed(p / MB, 0)).join(' / ')]);
    return result;
  };
  const workerPids = workers.map((worker) => worker.process.pid!);
  const gitDirect = await measure('git, direct to workers (git http-backend)', 'git', direct('big-git'), workerPids);
  const gitProxy = await measure('git, through Switchyard', 'git', viaProxy('big-git'), [proxy.pid, ...workerPids]);
  const hgServeResult = await measure('hg, direct to `hg serve`', 'hg', Array(PARALLEL).fill(`http://127.0.0.1:${hgServe.port}/`), [hgServe.pid]);
  const hgDirect = await measure('hg, direct to workers (hgweb CGI)', 'hg', direct('big-hg'), workerPids);
  const hgProxy = await measure('hg, through Switchyard', 'hg', viaProxy('big-hg'), [proxy.pid, ...workerPids]);
  const slow = await slowCloneRun(proxy, workers, head);

  const ratio = (a: { seconds: number }, b: { seconds: number }) => fixed(b.seconds / a.seconds, 2);
  const body = `Generated by \`npx tsx bench/clone/run.ts --size-mb ${args['size-mb']} --parallel ${PARALLEL} --slow ${SLOW_CLIENTS} --slow-seconds ${SLOW_SECONDS}\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? '?'}).
Repository: ${args['size-mb']} MB of random bytes in 20 commits; git pack ${fixed(packBytes / MB, 0)} MB. Each row runs ${PARALLEL} clones in parallel (one per worker; the proxy's clone pool has the same ${PARALLEL} workers, concurrency 1 each, balanced least-outstanding since every client is 127.0.0.1). Peak RSS is VmHWM per process, reset before each row (proxy first where present, then each worker).

${formatTable(
  [{ header: 'clones' }, { header: 'N', align: 'right' }, { header: 'wall s', align: 'right' }, { header: 'MB/s total', align: 'right' }, { header: 'peak RSS MB (proxy / workers)' }],
  rows,
)}

Throughput through Switchyard relative to direct: git ${ratio(gitProxy, gitDirect)}x, hg ${ratio(hgProxy, hgDirect)}x (target >= 0.9x); hg through Switchyard vs plain \`hg serve\`: ${ratio(hgProxy, hgServeResult)}x.

Slow readers: ${SLOW_CLIENTS} git clones through the proxy read at 1 MB/s each for ${SLOW_SECONDS} s (${fixed(slow.received / MB, 0)} MB received in all).
Proxy RSS ${fixed(slow.proxyBefore / MB, 1)} MB before, ${fixed(slow.proxyMax / MB, 1)} MB at most: ${fixed((slow.proxyMax - slow.proxyBefore) / MB / SLOW_CLIENTS, 2)} MB per slow clone (target < 5 MB).
Workers' RSS (sum) ${fixed(slow.workersBefore / MB, 1)} MB before, ${fixed(slow.workersMax / MB, 1)} MB at most.
`;
  console.log(body);
  if (!args['no-write']) {
    replaceSection(path.join(PROJECT_ROOT, 'docs', 'benchmarks.md'), '## Clone throughput (bench/clone)', body, '# Benchmarks\n');
  }
  for (const worker of workers) await worker.stop();
  await rm(data, { recursive: true, force: true });
}

try {
  await main();
} finally {
  for (const child of started) child.kill('SIGTERM');
}
