import path from 'node:path';
import { adminToken } from '../lib/admin-token.ts';
import { ConfigError, configFileFromEnv, loadConfig } from '../lib/config.ts';

const USAGE = `usage: switchyard <command>

commands:
  check-config [file]   validate a config file (default: $SWITCHYARD_CONFIG or conf/switchyard.yaml)
  fleet                 show every worker's state (asks the running supervisor)
  roll <pool>           recycle every worker of a pool, maxUnavailable at a time
  recycle <worker>      drain and restart one worker, e.g. web-0
  drain <worker>        take one worker out of rotation and leave it out
  undrain <worker>      put a drained worker back into rotation

The fleet commands use the supervisor API (supervisor.host:port of the config) with the admin token
($SWITCHYARD_ADMIN_TOKEN or <data>/admin-token).
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

const FLEET_ACTIONS: Record<string, (target: string) => string> = {
  roll: (pool) => `/api/pools/${encodeURIComponent(pool)}/roll`,
  recycle: (worker) => `/api/workers/${encodeURIComponent(worker)}/recycle`,
  drain: (worker) => `/api/workers/${encodeURIComponent(worker)}/drain`,
  undrain: (worker) => `/api/workers/${encodeURIComponent(worker)}/ready`,
};

/** Calls the running supervisor's API and prints its JSON answer; exit 1 on a refusal. */
async function callSupervisor(method: 'GET' | 'POST', route: string): Promise<number> {
  let config, token;
  try {
    config = loadConfig();
    token = adminToken(config.data).token;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 78;
  }
  const { host, port } = config.supervisor;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}${route}`;
  let response: Response;
  try {
    response = await fetch(url, { method, headers: { authorization: `Bearer ${token}` } });
  } catch (error) {
    process.stderr.write(`cannot reach the supervisor at ${url}: ${(error as Error).cause ?? (error as Error).message}\n`);
    return 1;
  }
  const body = await response.text();
  (response.ok ? process.stdout : process.stderr).write(`${response.ok ? '' : `HTTP ${response.status}: `}${body}\n`);
  return response.ok ? 0 : 1;
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'check-config':
    process.exitCode = checkConfig(args[0]);
    break;
  case 'fleet':
    process.exitCode = await callSupervisor('GET', '/api/fleet');
    break;
  case 'roll':
  case 'recycle':
  case 'drain':
  case 'undrain':
    if (!args[0]) {
      process.stderr.write(USAGE);
      process.exitCode = 2;
      break;
    }
    process.exitCode = await callSupervisor('POST', FLEET_ACTIONS[command](args[0]));
    break;
  default:
    process.stderr.write(USAGE);
    process.exitCode = command === undefined || command === 'help' || command === '--help' ? 0 : 2;
}
