import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Readable } from 'node:stream';

/**
 * Every git/hg process the worker starts goes through here. Each child leads its own process
 * group (git http-backend and hgweb start grandchildren such as upload-pack and pack-objects),
 * so killing the group ends the whole pipeline, and all groups are killed when the worker exits.
 */
export class ChildProcesses {
  private readonly running = new Set<ChildProcess>();

  constructor() {
    process.once('exit', () => this.killAll());
  }

  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(command, args, { ...options, shell: false, detached: true, stdio: options.stdio ?? 'pipe' });
    this.running.add(child);
    child.once('exit', () => this.running.delete(child));
    child.once('error', () => this.running.delete(child));
    return child;
  }

  get count(): number {
    return this.running.size;
  }

  killAll(): void {
    for (const child of this.running) killProcessGroup(child);
  }
}

/** SIGKILL to the child's process group; harmless if it is already gone. */
export function killProcessGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // already reaped
    }
  }
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim().slice(0, 500)}`);
    this.name = 'CommandError';
  }
}

export interface CaptureOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** refuse output larger than this (the command is killed) */
  maxBytes?: number;
}

/** Runs a command to completion and returns its stdout; throws CommandError on a non-zero exit. */
export function capture(
  children: ChildProcesses,
  command: string,
  args: readonly string[],
  options: CaptureOptions = {},
): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = children.spawn(command, args, { cwd: options.cwd, env: options.env });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        killProcessGroup(child);
        return;
      }
      stdout.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < 64) stderr.push(chunk);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const errorText = Buffer.concat(stderr).toString('utf8');
      if (tooLarge) reject(new CommandError(command, code, `output larger than ${maxBytes} bytes`));
      else if (code !== 0) reject(new CommandError(`${command} ${args.slice(0, 2).join(' ')}`, code, errorText));
      else resolve(Buffer.concat(stdout));
    });
    child.stdin!.on('error', () => {}); // the command may exit without reading its input
    child.stdin!.end(options.input ?? '');
  });
}

/** Ties a child's lifetime to its output stream: destroying the stream kills the child. */
export function killWhenClosed(stream: Readable, child: ChildProcess): Readable {
  stream.once('close', () => {
    if (child.exitCode === null && child.signalCode === null) killProcessGroup(child);
  });
  return stream;
}
