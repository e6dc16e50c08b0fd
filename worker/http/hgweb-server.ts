import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import type { Logger } from '../../lib/log.ts';
import { killProcessGroup, type ChildProcesses } from '../children.ts';
import { hgEnv, mercurialPython } from '../vcs/env.ts';

const HGWEB_SERVER = path.join(PROJECT_ROOT, 'worker', 'hgweb-server.py');
/** Python and Mercurial take ~0.2 s to start; a loaded machine gets many times that. */
export const HGWEB_START_TIMEOUT_MS = 15_000;
const LISTENING = /^listening (\d{1,5})$/m;
const MAX_STDOUT_BYTES = 4096;
const MAX_STDERR_LINE = 2000;

export class HgwebUnavailable extends Error {}

/**
 * The worker's one long-lived hgweb (worker/hgweb-server.py) for every repository under
 * reposRoot, listening on 127.0.0.1. Started by the first request that needs it and again by the
 * next one after it died; a start that does not finish in time fails that request (and kills
 * what was started), never hangs it. It runs in a process group of its own through
 * ChildProcesses, so it dies with the worker; it also exits when its stdin closes, which covers a
 * worker that was SIGKILLed.
 */
export class HgwebServer {
  private starting: Promise<number> | undefined;
  private child: ChildProcess | undefined;
  private listeningOn: number | undefined;

  constructor(
    private readonly children: ChildProcesses,
    private readonly reposRoot: string,
    private readonly log: Logger,
  ) {}

  /** The port it listens on, once it does. */
  port(): Promise<number> {
    this.starting ??= this.start().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  /** Drops the server that listened on `port` (it refused a connection): the next port() starts another. */
  forget(port: number): void {
    if (this.listeningOn !== port || !this.child) return;
    this.log.warn({ pid: this.child.pid, port }, 'the hgweb server refused a connection; starting another');
    killProcessGroup(this.child);
    this.child = undefined;
    this.starting = undefined;
  }

  private start(): Promise<number> {
    const started = Date.now();
    const child = this.children.spawn(mercurialPython(), [HGWEB_SERVER, this.reposRoot], { cwd: this.reposRoot, env: hgEnv() });
    this.child = child;
    // nothing here may keep the worker's event loop alive; the open stdin is the child's lifeline
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    child.stdin!.on('error', () => {});
    this.logStderr(child);
    child.once('exit', (code, signal) => {
      if (this.child === child) {
        this.child = undefined;
        this.starting = undefined;
      }
      this.log.warn({ pid: child.pid, code, signal }, 'hgweb server exited');
    });

    return new Promise<number>((resolve, reject) => {
      let stdout = '';
      const fail = (message: string) => {
        cleanUp();
        killProcessGroup(child);
        this.log.error({ pid: child.pid, ms: Date.now() - started, stdout: stdout.slice(0, 500) }, message);
        reject(new HgwebUnavailable(message));
      };
      const timer = setTimeout(() => fail(`the hgweb server did not start within ${HGWEB_START_TIMEOUT_MS} ms`), HGWEB_START_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        const match = LISTENING.exec(stdout);
        if (match) {
          cleanUp();
          child.stdout!.resume(); // anything it prints later is thrown away
          this.log.info({ pid: child.pid, port: Number(match[1]), ms: Date.now() - started }, 'hgweb server listening');
          this.listeningOn = Number(match[1]);
          resolve(this.listeningOn);
        } else if (stdout.length > MAX_STDOUT_BYTES) {
          fail('the hgweb server printed no port');
        }
      };
      const onExit = () => fail('the hgweb server exited before it listened');
      const onError = (error: Error) => fail(`cannot start the hgweb server: ${error.message}`);
      const cleanUp = () => {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      child.stdout!.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  }

  /** Its error log (a traceback for a request that failed inside hgweb), line by line, bounded. */
  private logStderr(child: ChildProcess): void {
    let pending = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!.slice(-MAX_STDERR_LINE);
      for (const line of lines) if (line.trim()) this.log.warn({ pid: child.pid, stderr: line.slice(0, MAX_STDERR_LINE) }, 'hgweb server');
    });
  }
}
