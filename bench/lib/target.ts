import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './net.ts';
import { announcedPort, spawnChild, spawnNodeScript, type Child } from './processes.ts';
import { findBinary } from './system-packages.ts';

/** A running HTTP server under test, in its own process. */
export interface Target {
  name: string;
  url: string;
  /** the process to charge CPU time to (with its children) */
  pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts a bench/targets/*.ts entry point that announces its port (bench/lib/announce.ts), launched
 * as spawnNodeScript launches it, with the same arguments.
 */
export async function startNodeTarget(...launch: Parameters<typeof spawnNodeScript>): Promise<Target> {
  const child = spawnNodeScript(...launch);
  return targetOf(child, await announcedPort(child).catch(stopAndThrow(child)));
}

/**
 * Starts an external server (nginx, HAProxy) whose config is written by `configure` into a fresh
 * temp dir for a free port; the dir is removed when the target stops. `child` is the process
 * started (its output, e.g. HAProxy's master log).
 */
export async function startExternalTarget(
  name: string,
  binary: string,
  configure: (dir: string, port: number) => string[],
  prefix: string[] = [],
): Promise<Target & { child: Child }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `switchyard-bench-${name}-`));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir); // also after Ctrl-C, which exits without unwinding
  const port = await freePort();
  // setpriv --pdeathsig: the kernel stops it even if the benchmark is killed with SIGKILL
  const setpriv = findBinary('setpriv');
  const command = [...(setpriv ? [setpriv, '--pdeathsig', 'TERM'] : []), ...prefix, binary, ...configure(dir, port)];
  const child = spawnChild(name, command[0], command.slice(1));
  await waitForPort(port, child).catch(stopAndThrow(child));
  const target = targetOf(child, port);
  return {
    ...target,
    child,
    async stop() {
      await target.stop();
      removeDir();
    },
  };
}

function targetOf(child: Child, port: number): Target {
  return { name: child.name, url: `http://127.0.0.1:${port}`, pid: child.process.pid, stop: () => child.stop() };
}

function stopAndThrow(child: Child) {
  return async (error: unknown): Promise<never> => {
    await child.stop();
    throw error;
  };
}
