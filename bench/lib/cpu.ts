import { readFileSync } from 'node:fs';
import { processTree } from './proc-stats.ts';

const TICKS_PER_SEC = 100; // USER_HZ on Linux

function ownCpuMs(pid: number): number {
  try {
    // fields after "(comm) ": state is [0]; utime and stime are [11] and [12]
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU time of a process and its descendants (e.g. nginx's master and worker), in ms; NaN off Linux. */
export function cpuTimeMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  return processTree(pid).reduce((sum, p) => sum + ownCpuMs(p), 0);
}
