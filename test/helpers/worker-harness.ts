// Test helpers for the worker: a seeded fixture copied per test, real worker processes on free
// ports, git/hg command runners and a /proc walk to find a worker's child processes.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { createLogger } from '../../lib/log.ts';
import { ChildProcesses } from '../../worker/children.ts';
import type { WorkerHealth } from '../../worker/http/health.ts';
import { seedDemoReposIfEmpty } from '../../worker/seed/seed.ts';

const execFileAsync = promisify(execFile);
const FIXTURE_ROOT = path.join(PROJECT_ROOT, 'test-artifacts', 'worker-fixture-v1', 'repos');

/** The demo repos, seeded once per checkout (test-artifacts/ is gitignored), then reused. */
export async function seededFixture(): Promise<string> {
  await seedDemoReposIfEmpty(FIXTURE_ROOT, new ChildProcesses(), createLogger('test-seed'));
  return FIXTURE_ROOT;
}

export async function tempDir(prefix = 'switchyard-worker-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A private copy of the seeded repos under `data` (default: a new temp dir): { data, repos }. */
export async function copyOfFixture(data?: string): Promise<{ data: string; repos: string }> {
  const fixture = await seededFixture();
  data ??= await tempDir();
  const repos = path.join(data, 'repos');
  await cp(fixture, repos, { recursive: true, filter: (source) => !path.basename(source).startsWith('.seed-') });
  return { data, repos };
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Runs a command to its end (killed past `timeoutMs`, when given); rejects on a non-zero exit. */
export async function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const { stdout, stderr } = await execFileAsync(command, args, {
    cwd: options.cwd,
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
    env: { ...process.env, HGPLAIN: '1', HGRCPATH: '', GIT_TERMINAL_PROMPT: '0', ...options.env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { stdout: stdout.toString(), stderr: stderr.toString() };
}

/** Runs a command that is expected to fail; returns its combined output. */
export async function runFailing(command: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  try {
    await run(command, args, options);
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    return `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
  }
  throw new Error(`${command} ${args.join(' ')} unexpectedly succeeded`);
}

export interface WorkerOptions {
  repos: string;
  data: string;
  env?: NodeJS.ProcessEnv;
  /** the worker: section of a config file written for this worker */
  worker?: { cacheBytes?: number; leakBytesPerRequest?: number; shutdownTimeoutMs?: number };
  /** default: a free port */
  port?: number;
}

export interface RunningWorker {
  port: number;
  url: string;
  process: ChildProcess;
  output: () => string;
  health(): Promise<WorkerHealth>;
  /** sends the signal and resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `node --import tsx worker/main.ts` and resolves once it has sent 'ready'. */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const port = options.port ?? (await freePort());
  const configFile = path.join(options.data, `worker-${port}.yaml`);
  const workerSection = { shutdownTimeoutMs: 5000, ...options.worker };
  await writeFile(configFile, `data: ${JSON.stringify(options.data)}\nworker:\n${Object.entries(workerSection).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    SWITCHYARD_CONFIG: configFile,
    SWITCHYARD_REPOS: options.repos,
    SWITCHYARD_POOL: 'clone',
    SWITCHYARD_WORKER_INDEX: '3',
    LOG_LEVEL: process.env.WORKER_TEST_LOG_LEVEL ?? 'warn',
    DATABASE_URL: '',
    REDIS_URL: '',
    ...options.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'worker', 'main.ts')], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not become ready:\n${output}`)), 60_000);
    child.on('message', (message) => {
      if (message === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before ready:\n${output}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    port,
    url,
    process: child,
    output: () => output,
    health: async () => (await (await fetch(`${url}/_worker/health`)).json()) as WorkerHealth,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  command: string;
}

async function processTable(): Promise<ProcInfo[]> {
  const table: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      table.push({ pid: Number(name), ppid: Number(ppid), state, command: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // the process ended while we looked
    }
  }
  return table;
}

/** Every process below pid (children, grandchildren...), zombies included, except tsx's esbuild helper. */
export async function descendantsOf(pid: number): Promise<ProcInfo[]> {
  const table = await processTable();
  const found: ProcInfo[] = [];
  const parents = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const proc of table) {
      if (parents.has(proc.ppid) && !parents.has(proc.pid)) {
        parents.add(proc.pid);
        found.push(proc);
        grew = true;
      }
    }
  }
  return found.filter((proc) => proc.command !== 'esbuild');
}

/** Polls until check() is true or the deadline passes; returns the last result. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

