import { ConfigError, configFileFromEnv, loadConfig } from '../lib/config.ts';
import type { ProcessReload, ReloadResult } from '../supervisor/config-reload.ts';
import { withSupervisor } from './supervisor-client.ts';

/** An invalid config, as at start-up. */
const EXIT_CONFIG = 78;
/** The supervisor starts the workers a reload adds and waits up to 60 s for their health checks before the proxies reload. */
const RELOAD_TIMEOUT_MS = 120_000;

type Refusal = { error: string; problems?: string[] };

const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;

/** One process's part: a heading with the counts, then each line under what became of it. */
function describe(name: string, { changes, notApplied }: ProcessReload): string[] {
  if (changes.length === 0 && notApplied.length === 0) return [`${name}: no changes`];
  const counts = [`${plural(changes.length, 'change', 'changes')} applied`, ...(notApplied.length > 0 ? [`${notApplied.length} not applied`] : [])];
  return [
    `${name}: ${counts.join(', ')}`,
    ...(changes.length > 0 ? ['  applied:', ...changes.map((line) => `    ${line}`)] : []),
    ...(notApplied.length > 0 ? ['  not applied (needs a restart or a roll):', ...notApplied.map((line) => `    ${line}`)] : []),
  ];
}

/** The summary `switchyard reload` prints: the supervisor, then each proxy it asked. */
export function reloadSummary({ supervisor, proxies }: ReloadResult): string {
  const lines = describe('supervisor', supervisor);
  for (const proxy of proxies) lines.push(...(proxy.ok ? describe(`proxy ${proxy.proxy}`, proxy) : [`proxy ${proxy.proxy}: FAILED: ${proxy.error}`]));
  if (proxies.length === 0) lines.push('no proxy known to the supervisor (proxies on other hosts reload with SIGHUP there)');
  return `${lines.join('\n')}\n`;
}

/**
 * `switchyard reload`: checks the config file in use here first (every problem as check-config
 * prints them, exit 78), then has the supervisor apply it to itself and every proxy it knows
 * (POST /api/reload). Exit 0 when every process took it, 1 when a proxy did not.
 */
export async function reload(): Promise<number> {
  try {
    loadConfig(configFileFromEnv());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return EXIT_CONFIG;
  }
  return withSupervisor(async (client) => {
    const { status, body } = await client.call<ReloadResult | Refusal>('POST', '/api/reload', { acceptStatus: [409, 422], timeoutMs: RELOAD_TIMEOUT_MS });
    if (status === 422) {
      // the supervisor reads the file with its own environment: it may see problems this one did not
      process.stderr.write(`the supervisor refused the config:\n${(body as Refusal).error}\n`);
      return EXIT_CONFIG;
    }
    if (status === 409) {
      process.stderr.write(`reload refused: ${(body as Refusal).error}\n`);
      return 1;
    }
    const result = body as ReloadResult;
    process.stdout.write(reloadSummary(result));
    const failed = result.proxies.filter((proxy) => !proxy.ok).length;
    if (failed > 0) process.stderr.write(`the reload failed on ${plural(failed, 'proxy', 'proxies')}\n`);
    return failed > 0 ? 1 : 0;
  });
}
