// Prints the PM2 apps for the current config as JSON (used by ecosystem.config.js).
import { ConfigError, configFileFromEnv, loadConfig } from '../lib/config.ts';
import { buildRuntime } from '../lib/build.ts';
import { pm2Apps } from '../lib/ecosystem.ts';

const file = configFileFromEnv();
try {
  const config = loadConfig(file);
  process.stdout.write(JSON.stringify({ apps: pm2Apps(config, file, buildRuntime()) }));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(78);
}
