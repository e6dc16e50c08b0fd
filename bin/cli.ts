import path from 'node:path';
import { ConfigError, configFileFromEnv, loadConfig } from '../lib/config.ts';

const USAGE = `usage: switchyard <command>

commands:
  check-config [file]   validate a config file (default: $SWITCHYARD_CONFIG or conf/switchyard.yaml)
`;

function checkConfig(file: string | undefined): number {
  const target = file ? path.resolve(file) : configFileFromEnv();
  try {
    const config = loadConfig(target);
    const pools = Object.entries(config.pools)
      .map(([name, pool]) => `${name} (${pool.targets ? `${pool.targets.length} targets` : `${pool.instances} x :${pool.portBase}+`})`)
      .join(', ');
    process.stdout.write(`${target}: OK\n  proxy :${config.proxy.port}, dashboard :${config.supervisor.port}\n  pools: ${pools}\n`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'check-config':
    process.exitCode = checkConfig(args[0]);
    break;
  default:
    process.stderr.write(USAGE);
    process.exitCode = command === undefined || command === 'help' || command === '--help' ? 0 : 2;
}
