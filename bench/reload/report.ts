import { summarizeLoads, type LoadSummary } from '../lib/browsing.ts';
import { fixed, formatTable, thousands } from '../lib/table.ts';
import type { ReloadPhaseResult } from './phase.ts';
import { splitByWindows, windows, type EventKind } from './schedule.ts';

// The reload bench's table, verdict and notes.

export interface ReloadSummary {
  label: string;
  mechanism: string;
  pages: number;
  failedPages: number;
  during: LoadSummary;
  outside: LoadSummary;
  clones: number;
  brokenClones: number;
  reloads: { ok: number; total: number };
  replacements: { ok: number; total: number };
  /** longest wait of a replacement for the previous one's old process to finish */
  maxWaitSec: number;
  restarts: number;
  errorSamples: string[];
  cloneErrors: string[];
  eventErrors: string[];
}

const count = (result: ReloadPhaseResult, kind: EventKind) => {
  const events = result.events.filter((event) => event.kind === kind);
  return { ok: events.filter((event) => event.ok).length, total: events.length };
};

export function summarize(result: ReloadPhaseResult, windowSec: number): ReloadSummary {
  const all = summarizeLoads(result.loads.map((timed) => timed.load));
  const { during, outside } = splitByWindows(result.loads, windows(result.events, windowSec * 1000));
  const broken = result.clones.filter((clone) => !clone.ok);
  return {
    label: result.spec.label,
    mechanism: result.spec.mechanism,
    pages: all.pages,
    failedPages: all.errors,
    during: summarizeLoads(during),
    outside: summarizeLoads(outside),
    clones: result.clones.length,
    brokenClones: broken.length,
    reloads: count(result, 'reload'),
    replacements: count(result, 'replace'),
    maxWaitSec: Math.max(0, ...result.events.map((event) => event.waitedMs / 1000)),
    restarts: result.restarts,
    errorSamples: all.errorSamples,
    cloneErrors: [...new Set(broken.map((clone) => `${clone.kind}: ${clone.error}`))].slice(0, 3),
    eventErrors: result.events.filter((event) => !event.ok).map((event) => `${event.kind} ${event.nth}: ${event.detail}`),
  };
}

export function resultsTable(rows: ReloadSummary[]): string {
  return formatTable(
    [
      { header: 'target' },
      { header: 'reload; replacement' },
      { header: 'pages', align: 'right' },
      { header: 'failed pages', align: 'right' },
      { header: 'clones', align: 'right' },
      { header: 'broken clones', align: 'right' },
      { header: 'p99 ms during events (pages)', align: 'right' },
      { header: 'p99 ms outside', align: 'right' },
      { header: 'p50 ms during / outside', align: 'right' },
      { header: 'reloads ok', align: 'right' },
      { header: 'replacements ok', align: 'right' },
      { header: 'proxy restarts', align: 'right' },
    ],
    rows.map((row) => [
      row.label,
      row.mechanism,
      thousands(row.pages),
      thousands(row.failedPages),
      thousands(row.clones),
      thousands(row.brokenClones),
      `${fixed(row.during.p99Ms, 0)} (${row.during.pages})`,
      fixed(row.outside.p99Ms, 0),
      `${fixed(row.during.p50Ms, 0)} / ${fixed(row.outside.p50Ms, 0)}`,
      `${row.reloads.ok}/${row.reloads.total}`,
      `${row.replacements.ok}/${row.replacements.total}`,
      String(row.restarts),
    ]),
  );
}

export function notes(rows: ReloadSummary[]): string[] {
  return rows.flatMap((row) => [
    ...(row.failedPages ? [`${row.label}: failed pages, e.g. ${row.errorSamples.map((error) => `"${error}"`).join(', ')}`] : []),
    ...(row.brokenClones ? [`${row.label}: broken clones, e.g. ${row.cloneErrors.map((error) => `"${error}"`).join(', ')}`] : []),
    ...row.eventErrors.map((error) => `${row.label}: ${error}`),
    ...(row.maxWaitSec >= 1 ? [`${row.label}: a replacement waited up to ${fixed(row.maxWaitSec, 1)} s for the previous one's old process to finish its clones`] : []),
  ]);
}

/** The issue's goal for Switchyard, and how each baseline fared on the same counts. */
export function verdict(rows: ReloadSummary[]): { lines: string[]; met: boolean } {
  const ours = rows.find((row) => row.label.startsWith('Switchyard'));
  if (!ours) return { lines: ['Switchyard was not measured: no verdict.'], met: false };
  const eventsOk = ours.reloads.ok === ours.reloads.total && ours.replacements.ok === ours.replacements.total;
  const checks: [boolean, string][] = [
    [ours.failedPages === 0, `Switchyard failed pages: ${ours.failedPages} of ${thousands(ours.pages)} (target 0)`],
    [ours.brokenClones === 0, `Switchyard broken clones: ${ours.brokenClones} of ${ours.clones} (target 0)`],
    [ours.restarts === 0, `Switchyard proxy restarts: ${ours.restarts} (target 0)`],
    [eventsOk, `Switchyard events done: ${ours.reloads.ok}/${ours.reloads.total} reloads, ${ours.replacements.ok}/${ours.replacements.total} replacements`],
  ];
  const lines = checks.map(([ok, text]) => `${ok ? 'met' : '**NOT met**'}: ${text}.`);
  const ratio = ours.during.p99Ms / ours.outside.p99Ms;
  lines.push(`Switchyard page p99 during the events ${fixed(ours.during.p99Ms, 0)} ms, outside ${fixed(ours.outside.p99Ms, 0)} ms (${fixed(ratio, 2)}x).`);
  for (const row of rows.filter((other) => other !== ours)) {
    lines.push(
      `${row.label}: ${row.failedPages} failed pages, ${row.brokenClones} broken clones, ${row.restarts} restarts; ` +
        `p99 during the events ${fixed(row.during.p99Ms, 0)} ms, outside ${fixed(row.outside.p99Ms, 0)} ms.`,
    );
  }
  return { lines, met: checks.every(([ok]) => ok) };
}
