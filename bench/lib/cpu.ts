import { readFileSync } from 'node:fs';
import { childrenOf, processTree } from './proc-stats.ts';

const TICKS_PER_SEC = 100; // USER_HZ on Linux

/** Clock ticks of /proc/<pid>/stat: utime and stime, and with reaped, cutime and cstime too; NaN once it is gone. */
function statTicks(pid: number, reaped: boolean): number {
  try {
    // fields after "(comm) ": state is [0]; utime, stime, cutime, cstime are [11] to [14]
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]) + (reaped ? Number(fields[13]) + Number(fields[14]) : 0);
  } catch {
    return Number.NaN;
  }
}

const ownCpuMs = (pid: number) => (statTicks(pid, false) * 1000) / TICKS_PER_SEC;

/** User + system CPU time of a process and its descendants (e.g. nginx's master and worker), in ms; NaN off Linux. */
export function cpuTimeMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  return processTree(pid).reduce((sum, p) => sum + ownCpuMs(p), 0);
}

/**
 * CPU time a process has cost so far with every child it ever had, in ms: its own, its reaped
 * children's (cutime, cstime: a worker's finished git/hg processes) and its live descendants'
 * (counted the same way). The difference of two readings is what the process tree cost between
 * them, children that ended in between included; NaN once the process is gone.
 */
export function cpuWithChildrenMs(pid: number): number {
  const children = childrenOf(pid).map(cpuWithChildrenMs).filter((ms) => !Number.isNaN(ms));
  return (statTicks(pid, true) * 1000) / TICKS_PER_SEC + children.reduce((sum, ms) => sum + ms, 0);
}
