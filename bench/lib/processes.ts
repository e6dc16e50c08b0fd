import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { compileScript } from '../../lib/build.ts';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** A child process started by a benchmark; every one is killed when the benchmark ends. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** resolves when the process has exited (never rejects) */
  readonly exited: Promise<void>;
  /** the last lines of its stdout/stderr, for error messages */
  output(): string;
  /** calls listener with each later line of stdout/stderr; returns the unsubscribe function */
  onLine(listener: (line: string) => void): () => void;
  stop(): Promise<void>;
}

const running = new Set<Child>();
const OUTPUT_LINES = 40;

export function spawnChild(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  // stdin stays open as a lifeline: Node targets exit when it closes (bench/lib/announce.ts)
  const proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [proc.stdout, proc.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      lines.push(line);
      if (lines.length > OUTPUT_LINES) lines.shift();
      for (const listener of listeners) listener(line);
    });
  }
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.once('error', (error) => {
      lines.push(`spawn failed: ${error.message}`);
      resolve();
    });
  });
  const child: Child = {
    name,
    process: proc,
    exited,
    output: () => lines.join('\n'),
    onLine(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
    },
  };
  running.add(child);
  void exited.then(() => running.delete(child));
  return child;
}

/**
 * Runs a TypeScript entry point compiled to plain JavaScript, as production runs (lib/build.ts):
 * every Node target of a benchmark is measured without a transpiler in its path. `prefix` wraps
 * the command (e.g. taskset, bench/lib/cpu-pinning.ts); `nodeArgs` are Node's own options (a
 * Switchyard proxy gets the ones production gives it, lib/ecosystem.ts PROXY_NODE_ARGS).
 */
export function spawnNodeScript(
  name: string,
  script: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  prefix: string[] = [],
  nodeArgs: readonly string[] = [],
): Child {
  const bundleName = path.relative(PROJECT_ROOT, script).replace(/\.ts$/, '').replace(/[\\/.]/g, '-');
  const compiled = compileScript(script, path.join(PROJECT_ROOT, '.bench-tmp', 'compiled', `${bundleName}.mjs`));
  const command = [...prefix, process.execPath, '--enable-source-maps', ...nodeArgs, compiled, ...args];
  return spawnChild(name, command[0], command.slice(1), env);
}

/** The next line of child's output matching pattern, or undefined after timeoutMs. */
export async function nextLine(child: Child, pattern: RegExp, timeoutMs: number): Promise<string | undefined> {
  let unsubscribe = () => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<string | undefined>((resolve) => {
      unsubscribe = child.onLine((line) => {
        if (pattern.test(line)) resolve(line);
      });
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
}

/** Waits for the `LISTENING <port>` line that bench/lib/announce.ts prints. */
export async function announcedPort(child: Child, timeoutMs = 15_000): Promise<number> {
  let unsubscribe = () => {};
  const found = new Promise<number>((resolve) => {
    unsubscribe = child.onLine((line) => {
      const match = /^LISTENING (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
  });
  const failed = child.exited.then(() => {
    throw new Error(`${child.name} exited before listening:\n${child.output()}`);
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${child.name} did not listen within ${timeoutMs} ms:\n${child.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([found, failed, timedOut]);
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
}

/** Runs a command to completion and returns its combined output (for versions, apt-get). */
export async function runCommand(command: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; output: string }> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  let output = '';
  proc.stdout.on('data', (chunk: Buffer) => (output += chunk));
  proc.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const [code] = (await Promise.race([once(proc, 'close'), once(proc, 'error').then(() => [null])])) as [number | null];
  return { code, output };
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop()));
}

let installed = false;

/** Kills every child on Ctrl-C, SIGTERM, an uncaught error or a plain exit. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping benchmark processes\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  // SIGTERM, not SIGKILL: nginx's master must live long enough to stop its worker
  process.once('exit', () => {
    for (const child of running) child.process.kill('SIGTERM');
  });
}
