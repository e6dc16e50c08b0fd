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
