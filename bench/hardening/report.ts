import { fixed, formatTable, thousands } from '../lib/table.ts';
import type { AttackReport } from './attacks.ts';
import type { PhaseResult, TargetResult } from './phase.ts';

// Table and verdict of the hardening scenario. The verdict is the issue's: under each attack a
// target's browsers keep their normal latency (p99 within NORMAL_RATIO of its own calm phase in
// the same run, no errors), and no process of the target ends.

export const NORMAL_RATIO = 1.5;

const calmOf = (target: TargetResult) => target.phases.find((phase) => phase.phase === 'calm');

export function p99Ratio(target: TargetResult, phase: PhaseResult): number {
  return phase.browsing.p99Ms / (calmOf(target)?.browsing.p99Ms ?? Number.NaN);
}

export const isNormal = (target: TargetResult, phase: PhaseResult) => phase.browsing.errors === 0 && p99Ratio(target, phase) <= NORMAL_RATIO;

/** "408 x85 (5.0 s)": how the attack's connections ended, the commonest first, with their mean length when known. */
export function attackOutcomes(report: AttackReport | undefined, top = 4): string {
  if (!report) return '-';
  const entries = Object.entries(report.outcomes).sort(([, a], [, b]) => b.count - a.count);
  const shown = entries.slice(0, top).map(([key, { count, totalSec }]) => `${key} x${thousands(count)}${totalSec > 0 ? ` (${fixed(totalSec / count, 1)} s)` : ''}`);
  const rest = entries.slice(top).reduce((sum, [, { count }]) => sum + count, 0);
  return [`${thousands(report.connections)}: ${shown.join(', ')}${rest ? `, other x${thousands(rest)}` : ''}`, ...(report.hung ? [`**${report.hung} hung**`] : [])].join('; ');
}

export function hardeningTable(results: TargetResult[]): string {
  return formatTable(
    [
      { header: 'target' },
      { header: 'phase' },
      { header: 'pages', align: 'right' },
      { header: 'p50 ms', align: 'right' },
      { header: 'p99 ms', align: 'right' },
      { header: 'errors', align: 'right' },
      { header: 'p99 / calm', align: 'right' },
      { header: 'normal?' },
      { header: 'proxy restarts', align: 'right' },
      { header: 'proxy RSS peak MB', align: 'right' },
      { header: "attack connections: how they ended (mean length)" },
    ],
    results.flatMap((target) =>
      target.phases.map((phase) => [
        target.label,
        phase.phase,
        thousands(phase.browsing.pages),
        fixed(phase.browsing.p50Ms, 0),
        fixed(phase.browsing.p99Ms, 0),
        thousands(phase.browsing.errors),
        phase.phase === 'calm' ? '1.00' : fixed(p99Ratio(target, phase), 2),
        phase.phase === 'calm' ? '-' : isNormal(target, phase) ? 'yes' : '**no**',
        `${phase.restarts}${phase.proxyAlive ? '' : ' (gone)'}`,
        fixed(phase.proxyRssPeakMb, 0),
        attackOutcomes(phase.attack),
      ]),
    ),
  );
}

/** One line per target: each attack phase against the criterion, restarts, and how the processes stopped. */
export function hardeningVerdict(results: TargetResult[]): string[] {
  return results.map((target) => {
    const attacked = target.phases.filter((phase) => phase.phase !== 'calm');
    const phases = attacked.map((phase) => {
      const errors = phase.browsing.errors ? `, ${thousands(phase.browsing.errors)} errors (e.g. "${phase.browsing.errorSamples[0]}")` : ', 0 errors';
      const recovery = Number.isNaN(phase.recoverySec) ? ', **no page loaded within 30 s after the attack**' : phase.recoverySec > 2 ? `, pages again ${fixed(phase.recoverySec, 1)} s after the attack` : '';
      return `${phase.phase} ${isNormal(target, phase) ? 'normal' : '**NOT normal**'} (p99 ${fixed(p99Ratio(target, phase), 2)}x calm${errors}${recovery})`;
    });
    const restarts = target.phases.reduce((sum, phase) => sum + phase.restarts, 0);
    const stop = `stopped in ${fixed(target.stop.proxySec, 1)} s (proxy) / ${fixed(target.stop.workersSec, 1)} s (workers), ${target.stop.left} processes left`;
    return `${target.label}: ${phases.join('; ')}; ${restarts === 0 ? '0 proxy restarts' : `**${restarts} proxy processes ended**`}; ${target.stop.left === 0 ? stop : `**${stop}**`}.`;
  });
}
