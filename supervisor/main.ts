// The supervisor entry point: `tsx supervisor/main.ts` (the PM2 app "supervisor").
import { adminToken } from '../lib/admin-token.ts';
import { ConfigError, configFileFromEnv, loadConfig, type SwitchyardConfig } from '../lib/config.ts';
import { exitPortInUse, isAddressInUse } from '../lib/bind-failure.ts';
import { createLogger } from '../lib/log.ts';
import { handleStopRequests } from '../lib/process-stop.ts';
import { exitDeadlineMs } from '../lib/stop-deadlines.ts';
import { buildApi } from './api.ts';
import { openHistory } from './history/store.ts';
import type { HistoryStore } from './history/types.ts';
import { ReloadRefused } from './config-reload.ts';
import { Pm2Client } from './pm2-client.ts';
import { ProxyControlClient } from './proxy-control.ts';
import { Supervisor } from './supervisor.ts';
import { reachableAt, requireRedisForSite, siteOf } from '../lib/site.ts';

const log = createLogger('supervisor');

/** The config file, or the admin token: a bad one stops start-up with exit 78 and one fatal line. */
function loadOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log.fatal({ file: error.file, problems: error.problems }, error.message);
    process.exit(78);
  }
}

/** The proxy's control API as seen from this host (a wildcard listen address is reached on loopback). */
function controlUrl(config: SwitchyardConfig): string {
  return `http://${reachableAt(config.proxy.control.host, config.proxy.control.port, '127.0.0.1')}`;
}

/** SIGHUP: the same reload as POST /api/reload; its outcome goes to the log, and a bad file never stops the process. */
function reloadOnHangup(supervisor: () => Supervisor | undefined): void {
  process.on('SIGHUP', () => {
    const running = supervisor();
    if (!running) return log.warn('SIGHUP before start-up finished: ignored');
    running.reload('SIGHUP').then(
      (result) => log.info({ ...result }, 'config reloaded (SIGHUP)'),
      (error: Error) => {
        if (error instanceof ReloadRefused) log.error({ status: error.status, problems: error.body.problems }, `config not reloaded (SIGHUP): ${error.message}`);
        else log.error({ err: error }, 'config reload failed (SIGHUP)');
      },
    );
  });
}

async function main(): Promise<void> {
  const configFile = configFileFromEnv();
  const config = loadOrExit(() => loadConfig(configFile));
  const site = loadOrExit(() => siteOf(config));
  loadOrExit(() => requireRedisForSite(site));
  handleStopRequests({ log, deadlineMs: exitDeadlineMs('supervisor', config), stop });
  let started: Supervisor | undefined;
  reloadOnHangup(() => started);
  const { token, file } = loadOrExit(() => adminToken(config.data));
  log.info({ tokenFile: file ?? '(from SWITCHYARD_ADMIN_TOKEN)' }, 'admin token for the API and dashboard');

  const supervisor = new Supervisor({
    config,
    log,
    pm2: new Pm2Client(),
    proxies: [new ProxyControlClient(controlUrl(config), token)],
    redis: process.env.REDIS_URL ? { url: process.env.REDIS_URL, adminToken: token } : undefined,
    configFile,
  });
  await supervisor.start();
  started = supervisor;

  // History may take a while to open (embedded Postgres) or be down: the fleet does not wait for it.
  let history: HistoryStore | undefined;
  openHistory({ databaseUrl: process.env.DATABASE_URL || undefined, dataDir: config.data, retentionDays: config.supervisor.historyDays, log }).then(
    (opened) => {
      history = opened;
      supervisor.attachHistory(opened);
    },
    (error: Error) => log.error({ err: error.message }, 'history store unavailable; fleet events stay in memory'),
  );

  const api = buildApi({ supervisor, token, log, dataDir: config.data });
  try {
    await api.listen({ host: config.supervisor.host, port: config.supervisor.port });
  } catch (error) {
    if (!isAddressInUse(error)) throw error;
    await exitPortInUse(log, { host: config.supervisor.host, port: config.supervisor.port });
  }
  log.info({ host: config.supervisor.host, port: config.supervisor.port, proxies: supervisor.publisher.proxies.map((p) => p.baseUrl) }, 'supervisor listening');
  process.send?.('ready');

  stopParts = { api, supervisor, history: () => history };
}

/** What a stop closes, once start-up is done; a stop before that just exits, bounded all the same. */
let stopParts: { api: { close(): Promise<unknown> }; supervisor: Supervisor; history: () => HistoryStore | undefined } | undefined;

async function stop(): Promise<void> {
  if (!stopParts) return;
  await stopParts.api.close().catch(() => {});
  await stopParts.supervisor.stop().catch((error: Error) => log.warn({ err: error.message }, 'supervisor stop failed'));
  await stopParts.history()?.close().catch(() => {});
}

process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  process.exit(1);
});

void main().catch((error: Error) => {
  log.fatal({ err: error }, 'supervisor failed to start');
  process.exit(1);
});
