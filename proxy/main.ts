import { adminToken } from '../lib/admin-token.ts';
import { ConfigError, configFileFromEnv, loadConfig, type SwitchyardConfig } from '../lib/config.ts';
import { exitPortInUse, isAddressInUse } from '../lib/bind-failure.ts';
import { createLogger } from '../lib/log.ts';
import { handleStopRequests } from '../lib/process-stop.ts';
import { exitDeadlineMs } from '../lib/stop-deadlines.ts';
import { reachableAt, requireRedisForSite, siteOf, type SiteHost } from '../lib/site.ts';
import { runningVersion } from '../lib/version.ts';
import { FleetSubscriber } from './fleet-subscriber.ts';
import { ProxyAnnouncer } from './proxy-announcer.ts';
import { ControlServer } from './control.ts';
import { ReplaceableProcess } from './replacement.ts';
import { SwitchyardProxy } from './server.ts';

const log = createLogger('proxy');

async function main(): Promise<void> {
  let config, token, site;
  const configFile = configFileFromEnv();
  try {
    config = loadConfig(configFile);
    token = adminToken(config.data).token;
    site = siteOf(config);
    requireRedisForSite(site);
  } catch (error) {
    if (error instanceof ConfigError) {
      log.fatal({ file: error.file, problems: error.problems }, error.message);
      process.exit(78); // EX_CONFIG: PM2 and shells can tell a config error from a crash
    }
    throw error;
  }
  const proxy = new SwitchyardProxy({ config, log, source: () => loadConfig(configFile) });
  // a config reload (as `POST /reload` does); the proxy logs what changed, or why the file was refused
  process.on('SIGHUP', () => {
    try {
      proxy.reloadConfig();
    } catch (error) {
      log.error({ err: error }, 'config reload failed');
    }
  });
  let fleet: FleetSubscriber | undefined;
  let announcer: ProxyAnnouncer | undefined;
  // The control API sees the proxy through a narrow interface (ControlledProxy): built here, not by the proxy.
  // Under proxy/master.ts, this process can be replaced by a fresh one with no request lost.
  const lifecycle = new ReplaceableProcess(
    proxy.pools,
    async (slots) => {
      control.server.close(); // the successor answers the control API from now on
      void fleet?.close();
      void announcer?.stop(); // the successor announces the same id; only our own entry is removed
      await proxy.retire(slots);
      await control.close();
    },
    log,
  );
  const control = new ControlServer(proxy, token, log, lifecycle);
  const [port, controlPort] = await Promise.all([proxy.listen(), control.listen(config.proxy.control.port, config.proxy.control.host)]).catch(
    (error: NodeJS.ErrnoException & { address?: string; port?: number }) => {
      if (!isAddressInUse(error)) throw error;
      return exitPortInUse(log, { host: error.address ?? config.proxy.host, port: error.port ?? config.proxy.port });
    },
  );
  log.info({ host: config.proxy.host, port, controlPort, pools: [...proxy.pools.keys()] }, 'proxy listening');
  // With Redis, drains reach every proxy over pub/sub; without it, the supervisor uses the control API.
  fleet = process.env.REDIS_URL ? new FleetSubscriber(process.env.REDIS_URL, token, (worker, state) => proxy.setWorkerState(worker, state), log) : undefined;
  // ... and every supervisor finds this proxy in Redis (supervisor/proxy-directory.ts).
  announcer = process.env.REDIS_URL ? announce(process.env.REDIS_URL, token, config, site.self, port, controlPort) : undefined;
  process.send?.('ready');
  // log rotation, as nginx: the access log's path is opened afresh (Node's own use of SIGUSR1, starting the inspector, gives way)
  process.on('SIGUSR1', () => proxy.reopenAccessLog());

  handleStopRequests({
    log,
    deadlineMs: exitDeadlineMs('proxy', config),
    stop: async () => {
      void fleet?.close();
      await Promise.all([announcer?.stop(), proxy.shutdown()]);
      await control.close();
    },
  });
}

/** This proxy's entry in the proxies hash: its id stays the same across `restart-proxy`. */
function announce(redisUrl: string, token: string, config: SwitchyardConfig, self: SiteHost, port: number, controlPort: number): ProxyAnnouncer {
  return new ProxyAnnouncer({
    redisUrl,
    adminToken: token,
    log,
    announcement: {
      id: `${self.name}:${port}`,
      host: self.name,
      address: reachableAt(config.proxy.host, port, self.address),
      control: `http://${reachableAt(config.proxy.control.host, controlPort, self.address)}`,
      version: runningVersion(),
      startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
      pid: process.pid,
    },
  });
}

process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  process.exit(1);
});

void main();
