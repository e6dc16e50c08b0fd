// The proxy's master process (what PM2 runs as "proxy"): it holds the listening sockets and runs one
// proxy process (proxy/main.ts), or two while one replaces the other. Node's cluster module
// shares the listeners: a successor accepts on the same sockets before its predecessor stops, so
// no connection is refused in between, and the successor is the script on disk now (a new build).
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { handleStopRequests } from '../lib/process-stop.ts';
import { PROXY_SCRIPT_ENV } from '../lib/proxy-script-env.ts';
import { INHERITED_STACK_ID_ENV, OWN_STACK_ID } from '../lib/stack-id.ts';
import { exitDeadlineMs } from '../lib/stop-deadlines.ts';
import { isHandoffMessage } from './handoff.ts';
import { GENERATION_ENV, SUCCESSOR_ENV, SUCCESSOR_START_TIMEOUT_MS, type MasterMessage, type ProcessMessage } from './replacement.ts';

const log = createLogger('proxy-master');


interface Generation {
  worker: Worker;
  number: number;
  startedAt: number;
  retiringSince?: number;
}

function defaultScript(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), here.endsWith('.ts') ? 'main.ts' : 'proxy.mjs');
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      log.fatal({ file: error.file, problems: error.problems }, error.message);
      process.exit(78);
    }
    throw error;
  }
  const { graceMs } = config.proxy.shutdown;
  // Each process accepts on the shared sockets itself (no round-robin hand-off through this one).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  if (OWN_STACK_ID) process.env[INHERITED_STACK_ID_ENV] = OWN_STACK_ID; // the proxy processes check workers against it
  cluster.setupPrimary({ exec: process.env[PROXY_SCRIPT_ENV] ?? defaultScript(), execArgv: process.execArgv });

  let generations = 0;
  let current: Generation | undefined;
  let retiring: Generation | undefined;
  let starting = false;
  let stopping = false;

  const send = (generation: Generation | undefined, message: MasterMessage | ProcessMessage | 'shutdown') => {
    if (generation?.worker.isConnected()) generation.worker.send(message);
  };

  /** Forks a proxy process and resolves once it listens; rejects if it exits or times out first. */
  const start = (successor: boolean): Promise<Generation> => {
    const generation: Generation = { worker: cluster.fork({ [GENERATION_ENV]: String(++generations), [SUCCESSOR_ENV]: successor ? '1' : '0' }), number: generations, startedAt: Date.now() };
    const { worker } = generation;
    worker.on('message', (message: ProcessMessage) => onMessage(generation, message));
    worker.on('exit', (code, signal) => onExit(generation, code, signal));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.process.kill('SIGKILL');
        reject(new Error(`the new proxy process did not listen within ${SUCCESSOR_START_TIMEOUT_MS} ms`));
      }, SUCCESSOR_START_TIMEOUT_MS);
      worker.on('message', (message) => {
        if (message !== 'ready') return;
        clearTimeout(timer);
        resolve(generation);
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the new proxy process exited before it listened (${signal ?? `exit code ${code}`})`));
      });
    });
  };

  const replace = async (): Promise<MasterMessage> => {
    if (stopping) return { type: 'proxy:replace-answer', ok: false, error: 'the proxy is stopping' };
    if (starting) return { type: 'proxy:replace-answer', ok: false, error: 'a replacement is already being started' };
    if (retiring) {
      return { type: 'proxy:replace-answer', ok: false, error: `the previous proxy process (pid ${retiring.worker.process.pid}) is still finishing its requests; try again when it has exited` };
    }
    starting = true;
    const predecessor = current!;
    try {
      const successor = await start(true);
      log.info({ pid: successor.worker.process.pid, generation: successor.number, predecessor: predecessor.worker.process.pid }, 'replacement listening; retiring its predecessor');
      retiring = predecessor;
      retiring.retiringSince = Date.now();
      current = successor;
      send(successor, { type: 'proxy:predecessor', pid: predecessor.worker.process.pid!, generation: predecessor.number });
      send(predecessor, { type: 'proxy:retire' });
      // its own grace period bounds it; this is the line behind that one
      const limit = setTimeout(() => {
        if (retiring === predecessor) {
          log.warn({ pid: predecessor.worker.process.pid }, 'retiring proxy process overran its grace period: killed');
          predecessor.worker.process.kill('SIGKILL');
        }
      }, graceMs + 10_000);
      limit.unref();
      return { type: 'proxy:replace-answer', ok: true, successor: { pid: successor.worker.process.pid!, generation: successor.number } };
    } catch (error) {
      log.error({ err: error }, 'replacement failed; the running proxy process stays');
      return { type: 'proxy:replace-answer', ok: false, error: (error as Error).message };
    } finally {
      starting = false;
    }
  };

  const onMessage = (from: Generation, message: ProcessMessage) => {
    if (isHandoffMessage(message)) {
      // slots between the retiring process and its successor, in order each way
      send(from === retiring ? current : from === current ? retiring : undefined, message);
      return;
    }
    if (typeof message === 'object' && message?.type === 'proxy:replace') void replace().then((answer) => send(from, answer));
  };

  const onExit = (generation: Generation, code: number | null, signal: string | null) => {
    if (generation === retiring) {
      retiring = undefined;
      const afterMs = Date.now() - (generation.retiringSince ?? generation.startedAt);
      log.info({ pid: generation.worker.process.pid, code, signal, afterMs }, 'retired proxy process exited');
      send(current, { type: 'proxy:predecessor-exited', pid: generation.worker.process.pid!, code, signal, afterMs });
      return;
    }
    if (generation !== current || stopping) return;
    // The one serving process died: the master cannot serve alone, so it exits and PM2 restarts the stack's proxy.
    log.fatal({ pid: generation.worker.process.pid, code, signal }, 'proxy process exited');
    process.exit(1);
  };

  process.on('SIGUSR2', () => {
    log.info('SIGUSR2: replacing the proxy process');
    void replace().then((answer) => log.info({ answer }, 'replacement asked by SIGUSR2'));
  });
  // Reload (SIGHUP) is the serving process's: one that retires finishes under the config it had.
  // Log reopening (SIGUSR1) is every process's that writes the log.
  process.on('SIGHUP', () => current?.worker.process.kill('SIGHUP'));
  process.on('SIGUSR1', () => {
    for (const generation of [current, retiring]) generation?.worker.process.kill('SIGUSR1');
  });

  handleStopRequests({
    log,
    deadlineMs: exitDeadlineMs('proxy-master', config),
    stop: async () => {
      stopping = true;
      const alive = [current, retiring].filter((generation): generation is Generation => generation !== undefined && !generation.worker.isDead());
      await Promise.all(
        alive.map(
          (generation) =>
            new Promise<void>((resolve) => {
              generation.worker.once('exit', () => resolve());
              // a message, not a signal: PM2 may have signalled the whole tree already, and a
              // second signal would cut the process's graceful stop short (lib/process-stop.ts)
              send(generation, 'shutdown');
            }),
        ),
      );
    },
  });

  try {
    current = await start(false);
  } catch (error) {
    log.fatal({ err: error }, 'the proxy process did not start');
    process.exit(1);
  }
  log.info({ pid: current.worker.process.pid, generation: current.number }, 'proxy master: proxy process listening');
  process.send?.('ready');
}

process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception');
  process.exit(1);
});

void main();
