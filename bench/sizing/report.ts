import { fixed, formatTable, thousands } from '../lib/table.ts';
import type { CloneCost } from './clone-costs.ts';
import type { StoreWindow } from './store-load.ts';

// The sizing bench's tables, and what its numbers give for 10,000 clones an hour.

export const CLONES_PER_HOUR = 10_000;
const perSec = CLONES_PER_HOUR / 3600;
const MB = 1024 * 1024;

/** Per clone: totals over the successful clones. */
export const per = (c: CloneCost, total: number) => total / Math.max(1, c.ok);

export function cloneTable(costs: CloneCost[]): string {
  return formatTable(
    [
      { header: 'repo' },
      { header: 'clone sharing' },
      { header: 'at once', align: 'right' },
      { header: 'clones ok', align: 'right' },
      { header: 'worker runs', align: 'right' },
      { header: 'proxy CPU ms/clone', align: 'right' },
      { header: 'worker CPU ms/clone', align: 'right' },
      { header: 'MB/clone', align: 'right' },
      { header: 'clone s (mean)', align: 'right' },
      { header: 'wall s', align: 'right' },
    ],
    costs.map((c) => [
      c.repo,
      c.sharing ? 'on' : 'off',
      String(c.concurrency),
      `${c.ok}/${c.clones}`,
      c.sharing ? String(generations(c)) : String(c.ok),
      fixed(per(c, c.proxyCpuMs), 0),
      fixed(per(c, c.workerCpuMs), 0),
      fixed(per(c, c.bytes) / MB, 2),
      fixed(c.meanCloneSec, 2),
      fixed(c.wallSec, 1),
    ]),
  );
}

/** Clones a worker produced (clone sharing's misses on the pack or bundle request). */
function generations(c: CloneCost): number {
  return c.answers.miss ?? 0;
}

export interface HourlyNeed {
  repo: string;
  sharing: boolean;
  workerCores: number;
  proxyCores: number;
  mbPerSec: number;
}

/** What 10,000 clones an hour of the stampede rows' repo and sharing need, at their measured per-clone cost. */
export function hourlyNeeds(costs: CloneCost[]): HourlyNeed[] {
  const stampedes = costs.filter((c) => c.concurrency > 1 && c.ok > 0);
  return stampedes.map((c) => ({
    repo: c.repo,
    sharing: c.sharing,
    workerCores: (perSec * per(c, c.workerCpuMs)) / 1000,
    proxyCores: (perSec * per(c, c.proxyCpuMs)) / 1000,
    mbPerSec: (perSec * per(c, c.bytes)) / MB,
  }));
}

export function hourlyTable(needs: HourlyNeed[]): string {
  return formatTable(
    [
      { header: 'repo' },
      { header: 'clone sharing' },
      { header: 'worker cores', align: 'right' },
      { header: 'proxy cores', align: 'right' },
      { header: 'MB/s out', align: 'right' },
      { header: 'Mbit/s out', align: 'right' },
    ],
    needs.map((need) => [
      need.repo,
      need.sharing ? 'on' : 'off',
      fixed(need.workerCores, 3),
      fixed(need.proxyCores, 3),
      fixed(need.mbPerSec, 2),
      fixed(need.mbPerSec * 8 * 1.048576, 1),
    ]),
  );
}

const perMin = (w: StoreWindow, n: number) => (n * 60) / w.seconds;
const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
const senderGroup = (sender: string) => (sender.startsWith('worker') ? 'workers' : sender);

export function senders(w: StoreWindow): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const [sender, count] of Object.entries(w.redis.bySender)) groups[senderGroup(sender)] = (groups[senderGroup(sender)] ?? 0) + count;
  return groups;
}

export function storeTable(windows: StoreWindow[]): string {
  return formatTable(
    [
      { header: 'window' },
      { header: 'clones/min', align: 'right' },
      { header: 'Redis cmds/min', align: 'right' },
      { header: 'proxy', align: 'right' },
      { header: 'supervisor', align: 'right' },
      { header: 'workers', align: 'right' },
      { header: 'in scripts', align: 'right' },
      { header: 'Redis CPU ms/min', align: 'right' },
      { header: 'PG rows written/min', align: 'right' },
      { header: 'PG commits/min', align: 'right' },
      { header: 'PG CPU ms/min', align: 'right' },
    ],
    windows.map((w) => {
      const by = senders(w);
      return [
        w.label,
        fixed(perMin(w, w.clones), 1),
        thousands(perMin(w, sum(w.redis.calls))),
        thousands(perMin(w, by.proxy ?? 0)),
        thousands(perMin(w, by.supervisor ?? 0)),
        thousands(perMin(w, by.workers ?? 0)),
        thousands(perMin(w, by.lua ?? 0)),
        fixed(perMin(w, w.redis.cpuMs), 0),
        thousands(perMin(w, sum(w.postgres.rows))),
        thousands(perMin(w, w.postgres.commits)),
        fixed(perMin(w, w.postgres.cpuMs), 0),
      ];
    }),
  );
}

/** Commands and rows per window, by name, for the notes under the table. */
export function storeDetails(windows: StoreWindow[]): string[] {
  return windows.map((w) => {
    const commands = Object.entries(w.redis.calls).sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${thousands(perMin(w, n))}`).join(', ');
    const rows = Object.entries(w.postgres.rows).sort((a, b) => b[1] - a[1]).map(([table, n]) => `${table} ${thousands(perMin(w, n))}`).join(', ');
    const by = Object.entries(w.redis.bySender).sort((a, b) => b[1] - a[1]).map(([sender, n]) => `${sender} ${thousands(perMin(w, n))}`).join(', ');
    return `${w.label}: Redis commands/min by command: ${commands || 'none'}; by process: ${by || 'none'}${w.redis.monitorCapped ? ' (MONITOR capped)' : ''}; PostgreSQL rows/min by table: ${rows || 'none'}.`;
  });
}

/** Per extra clone in the busy window over the idle one: PostgreSQL commits and Redis commands. */
export function perCloneStoreCost(windows: StoreWindow[]): { pgCommits: number; redisCommands: number } | undefined {
  const [idle, busy] = [windows.find((w) => w.label === 'idle'), windows.find((w) => w.label === 'busy')];
  if (!idle || !busy || busy.clones === 0) return undefined;
  const extra = (of: (w: StoreWindow) => number) => (perMin(busy, of(busy)) - perMin(idle, of(idle))) / perMin(busy, busy.clones);
  return { pgCommits: extra((w) => w.postgres.commits), redisCommands: extra((w) => sum(w.redis.calls)) };
}
