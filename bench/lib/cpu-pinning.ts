import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { findBinary } from './system-packages.ts';

/** Where a benchmark's processes run when the target under test gets a core of its own. */
export interface CpuIsolation {
  /** the core of the load generator (this process) and of everything started without `targetPrefix` */
  loadCpu: number;
  targetCpu: number;
  /** prepend to a target's command line to run it on `targetCpu` */
  targetPrefix: string[];
}

/**
 * Gives the target under test a core of its own: this process (the load generator) and every
 * process it starts from now on run on CPU 0, and commands prefixed with `targetPrefix` on CPU 1.
 * Otherwise the scheduler moves the target, the load generator and the upstream across two cores
 * at will, and a target's throughput swings by 2x between identical rounds. Undefined (nothing
 * pinned) on a one-CPU machine or without taskset.
 */
export function isolateTargetCpu(): CpuIsolation | undefined {
  const taskset = findBinary('taskset');
  if (!taskset || os.availableParallelism() < 2) return undefined;
  const [loadCpu, targetCpu] = [0, 1];
  // -a: every thread of this process (libuv pool, V8 workers), not only the main one
  execFileSync(taskset, ['-a', '-p', '-c', String(loadCpu), String(process.pid)], { stdio: 'ignore' });
  return { loadCpu, targetCpu, targetPrefix: [taskset, '-c', String(targetCpu)] };
}
