import { ConfigError, loadConfig, type SwitchyardConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import type { EventLog } from './event-log.ts';
import type { Fleet } from './fleet.ts';
import type { FleetPublisher } from './fleet-publisher.ts';
import type { HistoryStore } from './history/types.ts';
import type { PoolResizer } from './pool-resizer.ts';
import type { ProxyControlClient } from './proxy-control.ts';
import { planSupervisorReload } from './reload-plan.ts';

/** What one process made of a reload. */
export interface ProcessReload {
  changes: string[];
  notApplied: string[];
}

export interface ProxyReload extends ProcessReload {
  /** the proxy's control API */
  proxy: string;
  ok: boolean;
  error?: string;
}

export interface ReloadResult {
  supervisor: ProcessReload;
  proxies: ProxyReload[];
}

/** A reload that was not done; `body` is the API's answer (422: the new file's problems). */
export class ReloadRefused extends Error {
  constructor(
    readonly status: 409 | 422,
    readonly body: { error: string; problems?: string[] },
  ) {
    super(body.error);
  }
}

export interface ConfigReloaderOptions {
  /** the file the supervisor was started with ($SWITCHYARD_CONFIG); read again on every reload */
  configFile: string;
  log: Logger;
  fleet: Fleet;
  events: EventLog;
  publisher: FleetPublisher;
  /** the proxies to reload: this host's (each host reloads its own, with its own config file) */
  proxies(): ProxyControlClient[];
  resizer: PoolResizer;
  config(): SwitchyardConfig;
  setConfig(config: SwitchyardConfig): void;
  history(): HistoryStore | undefined;
}

const unique = (lines: string[]) => [...new Set(lines)];

/**
 * `switchyard reload`, POST /api/reload and SIGHUP: reads the config file again and applies it
 * to the supervisor (pools, recycle policy, drain settings, history retention), then has this
 * host's proxy reload (each host reloads its own). Workers a pool gains are up before the proxies
 * hear of them; workers it loses are marked draining before, then drained and stopped after
 * (events tell when).
 */
export class ConfigReloader {
  private running = false;

  constructor(private readonly options: ConfigReloaderOptions) {}

  async reload(source: string): Promise<ReloadResult> {
    if (this.running) throw new ReloadRefused(409, { error: 'a reload is under way' });
    const retiring = this.options.fleet.all().filter((worker) => worker.retiring);
    if (retiring.length > 0) {
      const names = retiring.map((worker) => worker.name).join(', ');
      throw new ReloadRefused(409, { error: `workers the last reload removed are still draining (${names}); reload again once they are gone` });
    }
    this.running = true;
    try {
      const supervisor = await this.applyHere(this.read());
      const proxies = await Promise.all(this.options.proxies().map((proxy) => this.reloadProxy(proxy)));
      const result = { supervisor, proxies };
      this.record(source, result);
      return result;
    } finally {
      this.running = false;
    }
  }

  private read(): SwitchyardConfig {
    try {
      return loadConfig(this.options.configFile);
    } catch (error) {
      if (error instanceof ConfigError) throw new ReloadRefused(422, { error: error.message, problems: error.problems });
      throw error;
    }
  }

  private async applyHere(next: SwitchyardConfig): Promise<ProcessReload> {
    const { fleet, resizer, publisher } = this.options;
    const plan = planSupervisorReload(this.options.config(), next);
    const notApplied = [...plan.notApplied];
    this.options.setConfig(plan.config);
    for (const [name, pool] of fleet.pools) {
      const config = plan.config.pools[name];
      if (config && !config.targets) fleet.setPoolConfig(pool, config);
    }
    this.options.history()?.setRetentionDays(plan.config.supervisor.historyDays);

    for (const { pool, to } of plan.resizes.filter((resize) => resize.to < resize.from)) void resizer.shrink(pool, to);
    await publisher.settled(); // the proxies have the removed workers as draining before their own reload drops them
    for (const { pool, from } of plan.resizes.filter((resize) => resize.to > resize.from)) {
      try {
        const late = await resizer.grow(pool, plan.config.pools[pool], from, plan.config);
        if (late.length > 0) notApplied.push(`pools.${pool}: ${late.join(', ')} not ready yet (PM2 keeps starting them; the proxies' health checks take them in when they answer)`);
      } catch (error) {
        notApplied.push(`pools.${pool}: starting its workers failed: ${(error as Error).message}`);
        this.options.log.error({ pool, err: (error as Error).message }, 'reload: starting workers failed');
      }
    }
    return { changes: plan.changes, notApplied };
  }

  private async reloadProxy(proxy: ProxyControlClient): Promise<ProxyReload> {
    try {
      return { proxy: proxy.baseUrl, ok: true, ...(await proxy.reload()) };
    } catch (error) {
      const message = (error as Error).name === 'TimeoutError' ? `POST ${proxy.baseUrl}/reload: no answer in time` : (error as Error).message;
      return { proxy: proxy.baseUrl, ok: false, changes: [], notApplied: [], error: message };
    }
  }

  /** One fleet event: the changes of every process together, and each proxy's outcome. */
  private record(source: string, { supervisor, proxies }: ReloadResult): void {
    const changes = unique([...supervisor.changes, ...proxies.flatMap((proxy) => proxy.changes)]);
    const notApplied = unique([...supervisor.notApplied, ...proxies.flatMap((proxy) => proxy.notApplied)]);
    const reloaded = proxies.filter((proxy) => proxy.ok).length;
    const counts = [`${changes.length} ${changes.length === 1 ? 'change' : 'changes'} applied`];
    if (notApplied.length > 0) counts.push(`${notApplied.length} not applied`);
    if (proxies.length > 0) counts.push(`${reloaded} of ${proxies.length} ${proxies.length === 1 ? 'proxy' : 'proxies'} reloaded`);
    this.options.events.record({
      kind: 'reload',
      reason: counts.join(', '),
      detail: {
        source,
        changes,
        notApplied,
        proxies: proxies.map((proxy) => (proxy.ok ? `${proxy.proxy}: reloaded` : `${proxy.proxy}: failed: ${proxy.error}`)),
      },
    });
  }
}
