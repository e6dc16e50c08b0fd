import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { trackProcessGroup, untrackProcessGroup } from '../lib/exit-deadline.ts';

/**
 * Every git/hg process the worker starts goes through here. Each child leads its own process
 * group (git http-backend and hgweb start grandchildren such as upload-pack and pack-objects),
 * so killing the group ends the whole pipeline, and all groups are killed when the worker exits
 * (by the 'exit' hook, or by the exit watchdog when the worker has to be SIGKILLed).
 */
export class ChildProcesses {
  private readonly running = new Set<ChildProcess>();

  constructor() {
    // at exit there is no time for the graceful path: SIGKILL every group at once
    process.once('exit', () => {
      for (const child of this.running) killGroupNow(child.pid);
    });
  }

  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(command, args, { ...options, shell: false, detached: true, stdio: options.stdio ?? 'pipe' });
    this.running.add(child);
    const pgid = child.pid;
    if (pgid !== undefined) trackProcessGroup(pgid);
    const forget = () => {
      this.running.delete(child);
      if (pgid !== undefined) untrackProcessGroup(pgid);
    };
    child.once('exit', forget);
    child.once('error', forget);
    return child;
  }

  get count(): number {
    return this.running.size;
  }

  killAll(): void {
    for (const child of this.running) killProcessGroup(child);
  }

  /** Kills every child and waits (bounded) until they are reaped, so none is left a zombie. */
  async killAllAndWait(timeoutMs = 2000): Promise<void> {
    const children = [...this.running];
    const exits = children.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    this.killAll();
    const deadline = Date.now() + timeoutMs;
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
    // grandchildren too: wait until every process group is empty (or the time is up)
    while (Date.now() < deadline && children.some((child) => (groupMembers(child.pid!) ?? []).length > 0)) {
      await new Promise((resolve) => setTimeout(resolve, KILL_ROUND_MS));
    }
    for (const child of children) killGroupNow(child.pid);
  }
}

const KILL_ROUND_MS = 40;
const KILL_ROUNDS = 8;

interface GroupMember {
  pid: number;
  ppid: number;
  zombie: boolean;
}

function groupMembers(pgid: number): GroupMember[] | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined; // no procfs: the caller falls back to killing the group
  }
  const members: GroupMember[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) members.push({ pid: Number(name), ppid: Number(fields[1]), zombie: fields[0] === 'Z' });
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

/**
 * Ends a child and everything it started, leaves first: git http-backend runs upload-pack which
 * runs pack-objects, and killing a parent before its child would orphan the child to init (a
 * zombie until init gets round to it). Killing the leaves makes each parent see its child die and
 * reap it on the way out. Whatever is left of the process group after a few rounds gets SIGKILL.
 */
export function killProcessGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pgid = child.pid;
  let round = 0;
  const killLeaves = () => {
    const members = groupMembers(pgid);
    if (!members || round++ >= KILL_ROUNDS) return killGroupNow(pgid);
    const live = members.filter((member) => !member.zombie);
    if (live.length === 0) return;
    const parents = new Set(live.map((member) => member.ppid));
    for (const leaf of live.filter((member) => !parents.has(member.pid))) {
      try {
        process.kill(leaf.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    setTimeout(killLeaves, KILL_ROUND_MS).unref();
  };
  killLeaves();
}

function killGroupNow(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone: the usual case
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
