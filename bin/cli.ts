import path from 'node:path';
import { ConfigError, configFileFromEnv, loadConfig, type PoolConfig } from '../lib/config.ts';
import { poolHosts } from '../lib/site.ts';
import { USAGE_EXIT, type Command } from './command.ts';
import { reload } from './reload.ts';
import { restartProxy } from './restart-proxy.ts';
import { FLEET_COMMANDS } from './fleet-commands.ts';

function checkConfig(file: string | undefined): number {
  const target = file ? path.resolve(file) : configFileFromEnv();
  try {
    const config = loadConfig(target);
    const onHosts = (pool: PoolConfig) => (config.hosts ? ` on ${poolHosts(config, pool).map((host) => host.name).join(', ')}` : '');
    const pools = Object.entries(config.pools)
      .map(([name, pool]) => `${name} (${pool.targets ? `${pool.targets.length} targets` : `${pool.instances} x :${pool.portBase}+${onHosts(pool)}`})`)
      .join(', ');
    const hosts = config.hosts ? `  hosts: ${Object.entries(config.hosts).map(([name, host]) => `${name} (${host.address})`).join(', ')}\n` : '';
    process.stdout.write(`${target}: OK\n  proxy :${config.proxy.port}, dashboard :${config.supervisor.port}\n${hosts}  pools: ${pools}\n`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

const COMMANDS: Record<string, Command> = {
  'check-config': {
    args: '[file]',
    summary: 'validate a config file (default: $SWITCHYARD_CONFIG or conf/switchyard.yaml)',
    run: ([file]) => checkConfig(file),
  },
  ...FLEET_COMMANDS,
  reload: { summary: 'check the config file, then apply it to the running supervisor and proxies (also: SIGHUP)', run: () => reload() },
  'restart-proxy': {
    args: '[--no-wait]',
    summary: 'replace the local proxy process by a fresh one (a new build), losing no request',
    run: (args) => restartProxy(args),
  },
};

function usage(exitCode: number): number {
  const lines = Object.entries(COMMANDS).map(([name, command]) => [`${name}${command.args ? ` ${command.args}` : ''}`, command.summary]);
  const width = Math.max(...lines.map(([left]) => left.length)) + 3;
  (exitCode === 0 ? process.stdout : process.stderr).write(`usage: switchyard <command>

commands:
${lines.map(([left, summary]) => `  ${left.padEnd(width)}${summary}`).join('\n')}

The fleet commands use the supervisor API (supervisor.host:port of the config) with the admin token
($SWITCHYARD_ADMIN_TOKEN or <data>/admin-token).
`);
  return exitCode;
}

const [name, ...args] = process.argv.slice(2);
const command = name === undefined ? undefined : Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
process.exitCode = command ? await command.run(args) : usage(name === undefined || name === 'help' || name === '--help' ? 0 : USAGE_EXIT);
