import { readdirSync, readFileSync } from 'node:fs';

// Memory and file descriptors of benchmark processes from /proc, with their descendants
// (nginx's master and worker, a worker's git/hg children).

/** The pids of pid's children (none once it is gone). */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** pid and every descendant. */
export function processTree(pid: number): number[] {
  const found = [pid];
  for (let i = 0; i < found.length; i++) found.push(...childrenOf(found[i]));
  return found;
}

function statusKb(pid: number, field: string): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function fdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Resident memory of pid (and with tree=true, its descendants), in bytes; 0 once it is gone. */
export function rssBytes(pid: number, tree = true): number {
  return (tree ? processTree(pid) : [pid]).reduce((sum, p) => sum + statusKb(p, 'VmRSS') * 1024, 0);
}

/** Open file descriptors of pid (and with tree=true, its descendants). */
export function fdCount(pid: number, tree = true): number {
  return (tree ? processTree(pid) : [pid]).reduce((sum, p) => sum + fdsOf(p), 0);
}

export interface GroupPeak {
  /** highest sum of RSS over the group's processes seen by a sample, bytes */
  peakRss: number;
  peakFds: number;
  lastRss: number;
  lastFds: number;
}

/**
 * Samples named groups of processes (e.g. "proxy": [pid], "workers": [pid, pid]) every
 * intervalMs and keeps each group's peak RSS and fd count. Sums include descendants.
 */
export class PeakSampler {
  private readonly peaks: Record<string, GroupPeak> = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly groups: Record<string, number[]>,
    private readonly intervalMs = 250,
  ) {
    for (const name of Object.keys(groups)) this.peaks[name] = { peakRss: 0, peakFds: 0, lastRss: 0, lastFds: 0 };
  }

  sample(): Record<string, GroupPeak> {
    for (const [name, pids] of Object.entries(this.groups)) {
      const peak = this.peaks[name];
      peak.lastRss = pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
      peak.lastFds = pids.reduce((sum, pid) => sum + fdCount(pid), 0);
      peak.peakRss = Math.max(peak.peakRss, peak.lastRss);
      peak.peakFds = Math.max(peak.peakFds, peak.lastFds);
    }
    return this.peaks;
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): Record<string, GroupPeak> {
    clearInterval(this.timer);
    return this.sample();
  }
}
