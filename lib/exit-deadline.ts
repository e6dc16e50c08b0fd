import { Worker } from 'node:worker_threads';

/**
 * A deadline for this process's exit that nothing on the main thread can hold up: a watchdog
 * thread that, when the time is up, SIGKILLs every tracked process group (git/hg pipelines) and
 * then this process. It runs on its own event loop, so a main thread stuck in a synchronous loop
 * (a log flush, a close that never returns) is killed all the same. Armed when a stop begins; it
 * costs a thread (about 9 MB) only from then on.
 */

/** Slots for process-group ids the watchdog kills first; 0 = free. Shared with the thread. */
const GROUP_SLOTS = 1024;
const groups = new Int32Array(new SharedArrayBuffer(GROUP_SLOTS * Int32Array.BYTES_PER_ELEMENT));

/**
 * Tracks a process group (a detached child's pid) for the watchdog. False when every slot is
 * taken: that group is then not killed at the deadline (the caller still kills it at exit).
 */
export function trackProcessGroup(pgid: number): boolean {
  for (let slot = 0; slot < GROUP_SLOTS; slot++) {
    if (Atomics.compareExchange(groups, slot, 0, pgid) === 0) return true;
  }
  return false;
}

export function untrackProcessGroup(pgid: number): void {
  for (let slot = 0; slot < GROUP_SLOTS; slot++) {
    if (Atomics.compareExchange(groups, slot, pgid, 0) === pgid) return;
  }
}

/** Process groups the watchdog would kill now (for tests and diagnostics). */
export function trackedProcessGroups(): number[] {
  return [...groups].filter((pgid) => pgid !== 0);
}

// Plain JavaScript evaluated in the thread (no file to find once the entry points are bundled).
const WATCHDOG = `
const { workerData, parentPort } = require('node:worker_threads');
const { pid, groups } = workerData;
let deadline = Infinity;
let timer;
function fire() {
  for (let slot = 0; slot < groups.length; slot++) {
    const pgid = Atomics.load(groups, slot);
    if (pgid > 0) try { process.kill(-pgid, 'SIGKILL'); } catch {}
  }
  process.kill(pid, 'SIGKILL');
}
function arm(at) {
  if (at >= deadline) return;
  deadline = at;
  clearTimeout(timer);
  timer = setTimeout(fire, Math.max(0, at - Date.now()));
}
parentPort.on('message', arm);
arm(workerData.at);
`;

let watchdog: Worker | undefined;
let armedAt: number | undefined;

/**
 * Kills this process (and its tracked process groups) `ms` from now unless it has exited by
 * then. Arming again can only bring the deadline closer. Returns the deadline (epoch ms).
 */
export function armExitDeadline(ms: number): number {
  const at = Date.now() + Math.max(0, ms);
  if (armedAt !== undefined && armedAt <= at) return armedAt;
  armedAt = at;
  if (watchdog) {
    watchdog.postMessage(at);
  } else {
    watchdog = new Worker(WATCHDOG, { eval: true, workerData: { pid: process.pid, groups, at }, stdout: false, stderr: false });
    watchdog.unref(); // it must never be what keeps the process alive
    // The thread cannot fail in normal operation; if it does, the caller's own timers remain.
    watchdog.on('error', () => {});
  }
  return at;
}

/** The armed deadline (epoch ms), if any. */
export function exitDeadline(): number | undefined {
  return armedAt;
}
