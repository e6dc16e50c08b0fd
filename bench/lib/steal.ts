import { readFileSync } from 'node:fs';

// Steal time: on a virtual machine, the share of time a vCPU wanted to run but the host ran
// something else. It does not show in a process's CPU time, yet it stretches every request, so a
// round measured under heavy steal says more about the host than about the target.

type CpuTicks = Map<string, { steal: number; total: number }>;

function readTicks(): CpuTicks {
  const ticks: CpuTicks = new Map();
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      if (!line.startsWith('cpu')) continue;
      const [name, ...fields] = line.trim().split(/\s+/);
      // user nice system idle iowait irq softirq steal (guest time is already inside user)
      const values = fields.slice(0, 8).map(Number);
      ticks.set(name, { steal: values[7] ?? 0, total: values.reduce((sum, value) => sum + value, 0) });
    }
  } catch {
    // not Linux: no steal figures
  }
  return ticks;
}

/** Starts a steal measurement; call the result to get the steal percentage of `cpu` (e.g. 1) since. NaN off Linux. */
export function stealMeter(): (cpu?: number) => number {
  const before = readTicks();
  return (cpu) => {
    const name = cpu === undefined ? 'cpu' : `cpu${cpu}`;
    const start = before.get(name);
    const end = readTicks().get(name);
    if (!start || !end || end.total === start.total) return Number.NaN;
    return (100 * (end.steal - start.steal)) / (end.total - start.total);
  };
}
