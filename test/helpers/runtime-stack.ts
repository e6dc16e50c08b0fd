// The stack as `npm start` runs it: pm2-runtime in the foreground on ecosystem.config.js, with a
// private PM2_HOME, free ports and a temp data dir (see fleet-stack.ts prepareStack).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { prepareStack, waitUntilUp, type FleetStackOptions, type PreparedStack } from './fleet-stack.ts';
import { killLeftovers, processesBelow, type StackProcess } from './stack-processes.ts';
import { removeDir } from './worker-harness.ts';

const pm2Runtime = path.join(PROJECT_ROOT, 'node_modules', 'pm2', 'bin', 'pm2-runtime');
const OUTPUT_LIMIT = 256 * 1024;

export interface RuntimeStack extends PreparedStack {
  runtime: ChildProcess;
  /** pm2-runtime's own output (the apps' lines go to PM2's log files), the last 256 KB */
  output(): string;
  /** the runtime's processes now: every app and the git/hg children of the workers */
  processes(): Promise<StackProcess[]>;
  /** SIGKILLs the runtime and every process seen below it, then removes the data dir */
  stop(): Promise<void>;
}

/** Starts pm2-runtime on the project's ecosystem.config.js; resolves once the stack is up (see FleetStackOptions). */
export async function startRuntimeStack(overrides: Record<string, unknown>, options: FleetStackOptions = {}): Promise<RuntimeStack> {
  const prepared = await prepareStack(overrides);
  await options.beforeStart?.(prepared.config);
  const runtime = spawn(process.execPath, [pm2Runtime, 'start', 'ecosystem.config.js'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, SWITCHYARD_CONFIG: prepared.file, PM2_HOME: prepared.pm2Home, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-OUTPUT_LIMIT));
  runtime.stdout!.on('data', collect);
  runtime.stderr!.on('data', collect);
  const seen = new Map<number, StackProcess>();
  const processes = async () => {
    const now = runtime.pid === undefined ? [] : await processesBelow(runtime.pid);
    for (const process_ of now) seen.set(process_.pid, process_);
    return now;
  };
  try {
    await waitUntilUp(prepared, options.isUp);
  } catch (error) {
    runtime.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\npm2-runtime output:\n${output.slice(-4000)}`);
  }
  await processes();
  return {
    ...prepared,
    runtime,
    output: () => output,
    processes,
    async stop() {
      if (runtime.exitCode === null && runtime.signalCode === null) runtime.kill('SIGKILL');
      killLeftovers([...seen.values()]);
      await removeDir(prepared.data);
    },
  };
}
