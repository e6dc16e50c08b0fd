import { fixed, formatTable, thousands } from '../lib/table.ts';
import type { HogResult, HogSettings } from './phase.ts';

export function hogTable(results: HogResult[], settings: HogSettings): string {
  return formatTable(
    [
      { header: 'target' },
      { header: 'hog conns opened', align: 'right' },
      { header: 'idle open at start / end', align: 'right' },
      { header: 'new users served', align: 'right' },
      { header: 'p50 ms', align: 'right' },
      { header: 'p99 ms', align: 'right' },
      { header: 'errors', align: 'right' },
      { header: 'proxy RSS MB before / peak', align: 'right' },
      { header: 'proxy fds before / peak', align: 'right' },
      { header: 'workers fds peak', align: 'right' },
    ],
    results.map((r) => [
      r.label,
      `${thousands(r.hogOpened)}${r.hogFailed ? ` (+${r.hogFailed} failed)` : ''}`,
      `${thousands(r.openAtStart)} / ${thousands(r.openAtEnd)}`,
      `${thousands(r.users.pages - r.users.errors)}/${settings.newUsers}`,
      fixed(r.users.p50Ms, 0),
      fixed(r.users.p99Ms, 0),
      thousands(r.users.errors),
      `${fixed(r.proxyRssBeforeMb, 0)} / ${fixed(r.proxyRssPeakMb, 0)}`,
      `${thousands(r.proxyFdsBefore)} / ${thousands(r.proxyFdsPeak)}`,
      thousands(r.workersFdsPeak),
    ]),
  );
}

/** The issue's target: new users p99 < 100 ms while all idle connections are open, proxy RSS < 150 MB. */
export function hogVerdict(results: HogResult[], settings: HogSettings): string[] {
  const total = settings.clients * settings.perClient;
  return results
    .filter((r) => r.label.startsWith('Switchyard'))
    .map((r) => {
      const held = r.openAtEnd >= total * 0.99;
      const heldText = `${thousands(r.openAtEnd)} of ${thousands(total)} idle connections still open at the end`;
      const checks: [boolean, string][] = [
        ...(held ? [] : ([[true, `(not the target's case: ${heldText}, closed by the idle policy)`]] as [boolean, string][])),
        ...(held ? ([[true, heldText]] as [boolean, string][]) : []),
        [r.users.errors === 0 && r.users.p99Ms < 100, `new users p99 ${fixed(r.users.p99Ms, 0)} ms, ${r.users.errors} errors (target < 100 ms, 0 errors)`],
        [r.proxyRssPeakMb < 150, `proxy RSS peak ${fixed(r.proxyRssPeakMb, 0)} MB, ${fixed(r.proxyRssPeakMb - r.proxyRssBeforeMb, 0)} MB above its idle ${fixed(r.proxyRssBeforeMb, 0)} MB (target < 150 MB)`],
      ];
      return `${r.label}: ${checks.map(([ok, text]) => `${ok ? 'met' : '**NOT met**'}: ${text}`).join('; ')}.`;
    });
}
