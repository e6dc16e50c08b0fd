import { readFileSync } from 'node:fs';

/**
 * Which launch of the stack a process belongs to: the PM2 daemon that started it (pm2-runtime
 * under `npm start`), as `pm2:<pid>@<start time>`, read once at start-up. Every app of one launch
 * shares it, across PM2 restarts and `pm2 reload`; a process left over from an earlier launch
 * keeps the old daemon's, so it can be told apart from the one the supervisor started on the same
 * port. Undefined outside PM2 (a process started by hand or by a test): nothing to compare.
 *
 * The daemon rather than an id handed out in the ecosystem's env: `pm2 reload ecosystem.config.js`
 * re-reads the file and would give the apps a new id one by one, so the proxy and the workers
 * would disagree for the whole rolling reload.
 */
export function stackIdOf(env: Record<string, string | undefined>, parentPid: number, readStat = readProcStat): string | undefined {
  if (env.pm_id === undefined) return undefined; // PM2 sets pm_id in the env of every app it starts
  // a proxy process's parent is the proxy master, which PM2 started: the master hands its id down
  if (env[INHERITED_STACK_ID_ENV]) return env[INHERITED_STACK_ID_ENV];
  const startTime = readStat(parentPid);
  return startTime === undefined ? `pm2:${parentPid}` : `pm2:${parentPid}@${startTime}`;
}

/** Set by proxy/master.ts for the proxy processes it starts (their parent is not the PM2 daemon). */
export const INHERITED_STACK_ID_ENV = 'SWITCHYARD_STACK_ID';

/** Field 22 of /proc/<pid>/stat: when the process started (clock ticks since boot); pids are reused, this pair is not. */
function readProcStat(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** This process's stack id, taken at start-up (an orphan's parent changes later). */
export const OWN_STACK_ID = stackIdOf(process.env, process.ppid);

/**
 * Why a worker's health answer is not from a process of our stack, or undefined when it is (or
 * when we have no stack id to compare: outside PM2).
 */
export function foreignStack(expected: string | undefined, report: { stack?: unknown; pid?: unknown }): string | undefined {
  if (expected === undefined || report.stack === expected) return undefined;
  const theirs = typeof report.stack === 'string' ? `stack ${report.stack.slice(0, 100)}` : 'no stack id';
  return `not a process of this stack: pid ${String(report.pid).slice(0, 20)} reports ${theirs}, expected ${expected}`;
}
