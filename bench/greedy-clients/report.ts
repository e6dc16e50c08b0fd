import { attackOutcomes, NORMAL_RATIO } from '../hardening/report.ts';
import { fixed, formatTable, thousands } from '../lib/table.ts';
import type { PartyReport } from './client.ts';
import type { PhaseResult, TargetResult } from './phase.ts';

// Table and verdict of the greedy-clients scenario. The goal is issue 18's: with the greedy
// client, the slow readers and the crawler on the fleet, the browsers' p99 stays within
// NORMAL_RATIO (1.5x, as in the hardening scenario) of the same browsing alone in the same run,
// with no browser error.

export const GOAL_RATIO = NORMAL_RATIO;

const calmOf = (target: TargetResult) => target.phases.find((phase) => phase.phase === 'calm');
const ratio = (target: TargetResult, phase: PhaseResult) => phase.browsing.p99Ms / (calmOf(target)?.browsing.p99Ms ?? Number.NaN);
export const meetsGoal = (target: TargetResult, phase: PhaseResult) => phase.browsing.errors === 0 && ratio(target, phase) <= GOAL_RATIO;

/** "200 x120 (0.9 s), 429 x800 (0.0 s); 480 MB": how the party's requests or connections ended, and what it took in. */
function party(report: PartyReport | undefined): string {
  return report ? `${attackOutcomes(report, 3)}; ${thousands(report.bytes / (1024 * 1024))} MB` : '-';
}

export function greedyTable(results: TargetResult[]): string {
  return formatTable(
    [
      { header: 'target' },
      { header: 'phase' },
      { header: 'pages', align: 'right' },
      { header: 'calm p99 ms', align: 'right' },
      { header: 'p99 ms', align: 'right' },
      { header: 'p99 / calm', align: 'right' },
      { header: 'browser errors', align: 'right' },
      { header: 'goal met?' },
      { header: 'greedy requests: outcome x count (mean s); MB taken' },
      { header: 'slow-reader connections: how they ended' },
      { header: 'crawler requests: outcome' },
      { header: 'proxy RSS peak MB', align: 'right' },
    ],
    results.flatMap((target) =>
      target.phases
        .filter((phase) => phase.phase !== 'calm')
        .map((phase) => [
          target.label,
          phase.phase,
          thousands(phase.browsing.pages),
          fixed(calmOf(target)?.browsing.p99Ms ?? Number.NaN, 0),
          fixed(phase.browsing.p99Ms, 0),
          fixed(ratio(target, phase), 2),
          `${thousands(phase.browsing.errors)}${calmOf(target)?.browsing.errors ? ` (calm ${thousands(calmOf(target)!.browsing.errors)})` : ''}`,
          meetsGoal(target, phase) ? 'yes' : '**no**',
          party(phase.parties.greedy),
          party(phase.parties.slow),
          party(phase.parties.crawler),
          fixed(phase.proxyRssPeakMb, 0),
        ]),
    ),
  );
}

/** One line per target: each phase with parties against the goal, with a browser error for example. */
export function greedyVerdict(results: TargetResult[]): string[] {
  return results.map((target) => {
    const phases = target.phases
      .filter((phase) => phase.phase !== 'calm')
      .map((phase) => {
        const errors = phase.browsing.errors ? `, ${thousands(phase.browsing.errors)} browser errors (e.g. "${phase.browsing.errorSamples[0]}")` : ', 0 browser errors';
        const p99 = Number.isFinite(ratio(target, phase)) ? `p99 ${fixed(ratio(target, phase), 2)}x calm` : 'no page loaded';
        return `${phase.phase} ${meetsGoal(target, phase) ? 'met' : '**NOT met**'} (${p99}${errors})`;
      });
    return `${target.label}: ${phases.join('; ')}.`;
  });
}
