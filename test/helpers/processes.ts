import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './http.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface AppProcess {
  child: ChildProcess;
  port: number;
  address: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Spawns a TypeScript entry point with tsx, kills it when the test process exits, and resolves
 * with the first match of `ready` in its stdout (rejects if it exits first).
 */
export async function spawnUntil(script: string, env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout!.on('data', (data: Buffer) => {
      output += data.toString();
      const found = ready.exec(output);
      if (found) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`${path.basename(script)} exited with ${code} before it was ready:\n${output}`)));
  });
  child.stdout!.resume();
  return { child, match };
}

/** Starts test/helpers/upstream-app.ts as its own process and waits until it listens. */
export async function startApp(name: string, port = 0): Promise<AppProcess> {
  const { child, match } = await spawnUntil(path.join(here, 'upstream-app.ts'), { APP_NAME: name, PORT: String(port) }, /LISTENING (\d+)/);
  const actualPort = Number(match[1]);
  return {
    child,
    port: actualPort,
    address: `127.0.0.1:${actualPort}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

export interface ProxyProcess {
  child: ChildProcess;
  port: number;
  url: string;
  /** resident memory of the proxy process, from /proc */
  rssBytes(): number;
  /** GET /state of its control API */
  state(): Promise<any>;
  /** the config file it was started with */
  configFile: string;
  /** any call to its control API, with the admin token */
  control(method: string, route: string): Promise<{ status: number; body: any }>;
  /** GET /metrics of its control API: Prometheus text */
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs proxy/main.ts (or, with `master`, proxy/master.ts, which runs main.ts in a process of its
 * own) with a generated config file; resolves once it listens.
 */
export async function startProxyProcess(config: Record<string, unknown>, env: Record<string, string> = {}, options: { master?: boolean } = {}): Promise<ProxyProcess> {
  const { mkdtempSync, writeFileSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { stringify } = await import('yaml');
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-proxy-'));
  const file = path.join(dir, 'switchyard.yaml');
  const withControl = { ...config, proxy: { control: { port: 0 }, ...(config.proxy as object) } };
  writeFileSync(file, stringify(withControl));
  const { child, match } = await spawnUntil(
    path.join(here, '..', '..', 'proxy', options.master ? 'master.ts' : 'main.ts'),
    { LOG_LEVEL: 'info', ...env, SWITCHYARD_CONFIG: file, SWITCHYARD_DATA: dir },
    /"port":(\d+),"controlPort":(\d+)[^\n]*"msg":"proxy listening"/,
  );
  const port = Number(match[1]);
  const controlPort = Number(match[2]);
  const controlRequest = (method: string, route: string) => {
    const token = env.SWITCHYARD_ADMIN_TOKEN ?? readFileSync(path.join(dir, 'admin-token'), 'utf8').trim();
    return request(`http://127.0.0.1:${controlPort}${route}`, { method, headers: { authorization: `Bearer ${token}` } });
  };
  const started: ProxyProcess = {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    configFile: file,
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async state() {
      return (await started.control('GET', '/state')).body;
    },
    async control(method: string, route: string) {
      const response = await controlRequest(method, route);
      return { status: response.status, body: JSON.parse(response.body) };
    },
    async metrics() {
      const response = await controlRequest('GET', '/metrics');
      if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}: ${response.body}`);
      return response.body;
    },
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
  return started;
}
