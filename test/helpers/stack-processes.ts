// What a stack leaves behind: its processes (by pid, taken while it ran) and its ports.
import { readFileSync } from 'node:fs';
import type { SwitchyardConfig } from '../../lib/config.ts';
import { isFree } from './fleet-stack.ts';
import { descendantsOf } from './worker-harness.ts';

export interface StackProcess {
  pid: number;
  /** the command line, for messages */
  command: string;
}

/** Every port the stack listens on: proxy, control API, supervisor, and each supervised worker. */
export function stackPorts(config: SwitchyardConfig): number[] {
  const workers = Object.values(config.pools).flatMap((pool) =>
    pool.targets ? [] : Array.from({ length: pool.instances }, (_, index) => pool.portBase + index),
  );
  return [config.proxy.port, config.proxy.control.port, config.supervisor.port, ...workers];
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 200);
  } catch {
    return '(gone)';
  }
}

/** The processes below `pid` (the PM2 runtime or daemon): its apps and their git/hg children. */
export async function processesBelow(pid: number): Promise<StackProcess[]> {
  return (await descendantsOf(pid)).filter((proc) => proc.state !== 'Z').map((proc) => ({ pid: proc.pid, command: commandLine(proc.pid) }));
}

/** The process exists and is not a zombie (an exited process its parent has not reaped yet). */
export function isLive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Running and still the same program: a reused pid would have another command line. */
export function isRunning(process: StackProcess): boolean {
  return isLive(process.pid) && commandLine(process.pid) === process.command;
}

export interface Leftovers {
  processes: StackProcess[];
  /** ports that something still listens on */
  ports: number[];
}

/** Polls until none of `processes` runs and every port is free, or `timeoutMs` passed; returns what is left. */
export async function waitForLeftovers(processes: StackProcess[], ports: number[], timeoutMs: number): Promise<Leftovers> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left: Leftovers = { processes: processes.filter(isRunning), ports: [] };
    if (left.processes.length === 0) {
      for (const port of ports) if (!(await isFree(port))) left.ports.push(port);
    }
    if ((left.processes.length === 0 && left.ports.length === 0) || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** SIGKILLs whatever of `processes` still runs (a test's cleanup: nothing may outlive the test). */
export function killLeftovers(processes: StackProcess[]): void {
  for (const process_ of processes.filter(isRunning)) {
    try {
      process.kill(process_.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
