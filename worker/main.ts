// The worker entry point: `tsx worker/main.ts` (one process per PM2 instance).
import { exitPortInUse, isAddressInUse } from '../lib/bind-failure.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { exitDeadlineMs } from '../lib/stop-deadlines.ts';
import { buildApp } from './app.ts';
import { createContentCache } from './cache/index.ts';
import { ChildProcesses } from './children.ts';
import type { WorkerContext } from './context.ts';
import { DeliberateLeak } from './leak.ts';
import { createRepoRegistry } from './registry/index.ts';
import { seedDemoReposIfEmpty } from './seed/seed.ts';
import { workerSettings } from './settings.ts';
import { installGracefulShutdown } from './shutdown.ts';
import { WorkerStats } from './stats.ts';

const config = loadConfig();
const settings = workerSettings(config);
const log = createLogger('worker', { pool: settings.pool, index: settings.index });
const children = new ChildProcesses();

process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  children.killAll();
  process.exit(1);
});

await seedDemoReposIfEmpty(settings.reposRoot, children, log);

const ctx: WorkerContext = {
  settings,
  registry: createRepoRegistry(settings.reposRoot, settings.databaseUrl, log),
  cache: createContentCache({ maxBytes: settings.cacheBytes, redisUrl: settings.redisUrl, reposRoot: settings.reposRoot, log }),
  children,
  leak: new DeliberateLeak(settings.leakBytesPerRequest),
  stats: new WorkerStats(),
  log,
};
const app = buildApp(ctx);
installGracefulShutdown(app, ctx, exitDeadlineMs('worker', config));
try {
  await app.listen({ host: settings.host, port: settings.port });
} catch (error) {
  if (!isAddressInUse(error)) throw error;
  await exitPortInUse(log, { host: settings.host, port: settings.port, pool: settings.pool, index: settings.index });
}
const address = app.server.address();
log.info(
  {
    port: typeof address === 'object' && address ? address.port : settings.port,
    repos: settings.reposRoot,
    registry: settings.databaseUrl ? 'postgresql' : 'filesystem',
    cache: settings.redisUrl ? 'memory+redis' : 'memory',
    concurrency: settings.concurrency,
  },
  'worker listening',
);
process.send?.('ready');
