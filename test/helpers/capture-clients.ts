// Runs real clients (git, hg, curl, Chromium) with a hard kill timer, in a clean environment,
// and sets up throw-away git and hg repositories for them to talk to.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** the whole process group is killed after this long */
  timeoutMs?: number;
}

/** Which of these executables are on PATH. */
export function available(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** An environment without proxies, user config or prompts, so clients behave the same everywhere. */
export function cleanEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LANG: 'C',
    LC_ALL: 'C',
    TMPDIR: tmpdir(),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.invalid',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.invalid',
    HGPLAIN: '1',
    HGRCPATH: '',
    HGUSER: 'Test <test@example.invalid>',
    NO_PROXY: '*',
    ...extra,
  };
}

/** Spawns a command in its own process group; never resolves later than timeoutMs (+ a little). */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(tmpdir()),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const finish = (result: Omit<RunResult, 'stdout' | 'stderr' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(hardTimer);
      // Chromium leaves helper processes behind in the group; they are ours, so end them.
      killGroup('SIGKILL');
      resolve({ ...result, stdout, stderr, timedOut });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGKILL');
    }, timeoutMs);
    // If even SIGKILL does not produce an exit event, give up waiting.
    const hardTimer = setTimeout(() => finish({ code: null, signal: 'SIGKILL' }), timeoutMs + 5000);
    child.stdout!.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', (error) => {
      stderr += String(error);
      finish({ code: null, signal: null });
    });
    child.on('close', (code, signal) => finish({ code, signal }));
  });
}

export function describe(result: RunResult): string {
  return `exit ${result.code ?? result.signal}${result.timedOut ? ' (timed out)' : ''}\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-2000)}`;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `switchyard-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function mustRun(command: string, args: string[], cwd: string, env: Record<string, string>): void {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${result.status ?? result.signal} ${result.stderr} ${result.error ?? ''}`);
  }
}

/** A git repository `<root>/<name>` with one commit, served by git http-backend. */
export function createGitRepo(root: string, name: string, env: Record<string, string>): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  mustRun('git', ['init', '-q', '-b', 'main'], dir, env);
  writeFileSync(path.join(dir, 'README'), 'hello\n');
  mustRun('git', ['add', 'README'], dir, env);
  mustRun('git', ['commit', '-q', '-m', 'first'], dir, env);
  return dir;
}

export function addGitCommit(dir: string, env: Record<string, string>, file = 'more.txt'): void {
  writeFileSync(path.join(dir, file), `${Date.now()}\n`);
  mustRun('git', ['add', file], dir, env);
  mustRun('git', ['commit', '-q', '-m', `add ${file}`], dir, env);
}

/** An hg repository with one commit. */
export function createHgRepo(dir: string, env: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  mustRun('hg', ['init'], dir, env);
  writeFileSync(path.join(dir, 'README'), 'hello\n');
  mustRun('hg', ['commit', '-q', '-A', '-m', 'first'], dir, env);
  return dir;
}

export function addHgCommit(dir: string, env: Record<string, string>, file = 'more.txt'): void {
  writeFileSync(path.join(dir, file), `${Date.now()}\n`);
  mustRun('hg', ['commit', '-q', '-A', '-m', `add ${file}`], dir, env);
}
