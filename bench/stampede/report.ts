import { median } from '../lib/load.ts';
import { fixed, formatTable, thousands } from '../lib/table.ts';
import type { PhaseResult, StampedeSettings } from './phase.ts';

// Tables and verdict of the midnight-stampede scenario.

export function clonesOk(result: PhaseResult): number {
  return result.clones.filter((clone) => clone.ok).length;
}

/** Median time of the clones that completed over a full-speed link. */
export const cloneP50 = (result: PhaseResult) => median(result.clones.filter((clone) => clone.ok && !clone.slow).map((clone) => clone.seconds));

export function resultsTable(results: PhaseResult[], settings: StampedeSettings): string {
  return formatTable(
    [
      { header: 'target' },
      { header: 'pages', align: 'right' },
      { header: 'page p50 ms', align: 'right' },
      { header: 'page p99 ms', align: 'right' },
      { header: 'page errors', align: 'right' },
      { header: 'clones ok', align: 'right' },
      { header: 'clone p50 s', align: 'right' },
      { header: 'slow clone p50 s', align: 'right' },
      { header: 'all clones s', align: 'right' },
      { header: 'worker CPU s', align: 'right' },
      { header: 'clone workers CPU s', align: 'right' },
      { header: 'proxy RSS MB', align: 'right' },
      { header: 'workers RSS MB', align: 'right' },
    ],
    results.map((result) => {
      const ok = result.clones.filter((clone) => clone.ok);
      return [
        result.label,
        thousands(result.browsing.pages),
        fixed(result.browsing.p50Ms, 0),
        fixed(result.browsing.p99Ms, 0),
        thousands(result.browsing.errors),
        result.stampede ? `${ok.length}/${settings.bots}` : '-',
        fixed(cloneP50(result), 1),
        fixed(median(ok.filter((clone) => clone.slow).map((clone) => clone.seconds)), 1),
        fixed(result.clonesWallSec, 1),
        fixed(result.workerCpuSec, 1),
        result.id.startsWith('switchyard') ? fixed(result.cloneWorkerCpuSec, 1) : '-',
        fixed(result.proxyPeakRssMb, 0),
        fixed(result.workersPeakRssMb, 0),
      ];
    }),
  );
}

export function errorNotes(results: PhaseResult[]): string[] {
  return results.flatMap((result) => {
    const notes: string[] = [];
    if (result.browsing.errors) notes.push(`${result.label}: page errors, e.g. ${result.browsing.errorSamples.map((e) => `"${e}"`).join(', ')}`);
    const failed = result.clones.filter((clone) => !clone.ok);
    if (failed.length) notes.push(`${result.label}: ${failed.length} clones failed, e.g. ${[...new Set(failed.map((c) => `"${c.kind}: ${c.error}"`))].slice(0, 2).join(', ')}`);
    return notes;
  });
}

/** Issue 21's goals: the stampede against calm browsing, clone sharing on against off, Switchyard against the best baseline. */
export const GOALS = { p99VsCalm: 1.2, cpuShare: 1 / 5 };

/** The issue's targets for the stampede, checked against this run (targets by id: switchyard, switchyard-unshared, the baselines). */
export function verdict(results: PhaseResult[], settings: StampedeSettings): { lines: string[]; met: boolean } {
  const calm = results.find((result) => result.id === 'switchyard' && !result.stampede);
  const ours = results.find((result) => result.id === 'switchyard' && result.stampede);
  const unshared = results.find((result) => result.id === 'switchyard-unshared' && result.stampede);
  const baselines = results.filter((result) => !result.id.startsWith('switchyard') && result.stampede);
  if (!calm || !ours) return { lines: ['Switchyard was not measured both with and without the stampede: no verdict.'], met: false };
  const ratio = ours.browsing.p99Ms / calm.browsing.p99Ms;
  const best = (values: number[]) => Math.min(...values.filter((value) => !Number.isNaN(value)));
  const bestP50 = best(baselines.map(cloneP50));
  const bestWall = best(baselines.map((baseline) => baseline.clonesWallSec));
  const checks: [boolean, string][] = [
    [ratio <= GOALS.p99VsCalm, `Browser p99 under the stampede ${fixed(ours.browsing.p99Ms, 0)} ms vs ${fixed(calm.browsing.p99Ms, 0)} ms without it: ${fixed(ratio, 2)}x (target <= ${GOALS.p99VsCalm}x)`],
    [ours.browsing.errors === 0, `Browser errors under the stampede: ${ours.browsing.errors} (target 0)`],
    [clonesOk(ours) === settings.bots, `Clones completed: ${clonesOk(ours)}/${settings.bots} (target all)`],
    ...(unshared
      ? [
          [
            ours.cloneWorkerCpuSec <= unshared.cloneWorkerCpuSec * GOALS.cpuShare,
            `Clone workers' CPU (with their git/hg children) for the ${settings.bots} clones: ${fixed(ours.cloneWorkerCpuSec, 1)} s shared vs ${fixed(unshared.cloneWorkerCpuSec, 1)} s unshared, ` +
              `${fixed(ours.cloneWorkerCpuSec / unshared.cloneWorkerCpuSec, 2)}x (target <= ${fixed(GOALS.cpuShare, 2)}x); all workers ${fixed(ours.workerCpuSec, 1)} s vs ${fixed(unshared.workerCpuSec, 1)} s`,
          ] as [boolean, string],
        ]
      : []),
    ...(baselines.length
      ? [
          [cloneP50(ours) < bestP50, `Clone p50 ${fixed(cloneP50(ours), 1)} s vs ${fixed(bestP50, 1)} s for the best of nginx and HAProxy (target better)`] as [boolean, string],
          [ours.clonesWallSec < bestWall, `Time to all clones ${fixed(ours.clonesWallSec, 1)} s vs ${fixed(bestWall, 1)} s for the best of nginx and HAProxy (target better)`] as [boolean, string],
        ]
      : []),
    ...baselines.map((baseline): [boolean, string] => [
      ours.browsing.p99Ms < baseline.browsing.p99Ms && ours.browsing.errors <= baseline.browsing.errors,
      `vs ${baseline.label}: p99 ${fixed(ours.browsing.p99Ms, 0)} vs ${fixed(baseline.browsing.p99Ms, 0)} ms (${fixed(baseline.browsing.p99Ms / ours.browsing.p99Ms, 1)}x better), errors ${ours.browsing.errors} vs ${baseline.browsing.errors}`,
    ]),
  ];
  return { lines: checks.map(([ok, text]) => `${ok ? 'met' : '**NOT met**'}: ${text}.`), met: checks.every(([ok]) => ok) };
}
