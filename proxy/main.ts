import { adminToken } from '../lib/admin-token.ts';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { FleetSubscriber } from './fleet-subscriber.ts';
import { SwitchyardProxy } from './server.ts';

const log = createLogger('proxy');

async function main(): Promise<void> {
  let config, token;
  try {
    config = loadConfig();
    token = adminToken(config.data).token;
  } catch (error) {
    if (error instanceof ConfigError) {
      log.fatal({ file: error.file, problems: error.problems }, error.message);
      process.exit(78); // EX_CONFIG: PM2 and shells can tell a config error from a crash
    }
    throw error;
  }
  const proxy = new SwitchyardProxy({ config, log });
  await proxy.listen();
  // With Redis, drains reach every proxy over pub/sub; without it, the supervisor uses the control API.
  const fleet = process.env.REDIS_URL ? new FleetSubscriber(process.env.REDIS_URL, token, (worker, state) => proxy.setWorkerState(worker, state), log) : undefined;
  process.send?.('ready');

  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'stopping');
    void fleet?.close();
    proxy.shutdown().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('message', (message) => {
    if (message === 'shutdown') stop('pm2 shutdown message');
  });
}

process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  process.exit(1);
});

void main();
