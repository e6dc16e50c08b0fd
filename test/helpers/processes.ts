import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Starts test/helpers/upstream-app.ts as its own process and waits until it listens. */
export async function startApp(name: string, port = 0): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'upstream-app.ts')], {
    env: { ...process.env, APP_NAME: name, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const actualPort = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (data: Buffer) => {
      output += data.toString();
      const match = /LISTENING (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`app ${name} exited with ${code} before listening`)));
  });
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
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs proxy/main.ts as its own process with a generated config file; resolves once it listens. */
export async function startProxyProcess(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<ProxyProcess> {
  const { mkdtempSync, writeFileSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { stringify } = await import('yaml');
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-proxy-'));
  const file = path.join(dir, 'switchyard.yaml');
  const withControl = { ...config, proxy: { control: { port: 0 }, ...(config.proxy as object) } };
  writeFileSync(file, stringify(withControl));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, '..', '..', 'proxy', 'main.ts')], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env, SWITCHYARD_CONFIG: file, SWITCHYARD_DATA: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (data: Buffer) => {
      output += data.toString();
      const match = /"port":(\d+)[^\n]*"msg":"proxy listening"/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`proxy exited with ${code} before listening:\n${output}`)));
  });
  child.stdout!.resume();
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}
