// A redis-server of a test's own on a free port (loopback, or an address given), for tests that stop and
// start it: the machine's shared server on 6379 stays untouched. It keeps nothing on disk (a
// restart comes back empty, as the machine's own does). Stopped by remove(), at process exit, or
// by the next test that finds it orphaned (its owner gone).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { cleanUpOrphans, ownedTempDir } from './owned-dirs.ts';
import { freePort } from './worker-harness.ts';

const PREFIX = 'switchyard-redis-';
const SERVER_PID_FILE = 'redis.pid';
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** Kills the server a dead test left running and deletes its dir. */
function removeOrphan(dir: string): void {
  let server = 0;
  try {
    server = Number(readFileSync(path.join(dir, SERVER_PID_FILE), 'utf8'));
  } catch {
    // its server never started
  }
  if (server > 0) killQuietly(server, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

export class PrivateRedis {
  private server: ChildProcess | undefined;
  private removed = false;
  private readonly onExit = () => this.removeNow();

  private constructor(
    /** holds owner.pid and the server's pid */
    private readonly dir: string,
    readonly port: number,
    /** the address it listens on */
    readonly host: string,
  ) {
    process.once('exit', this.onExit);
  }

  /** Starts a server on a free port of `host` (default loopback) and waits until it accepts connections. */
  static async create(host = '127.0.0.1'): Promise<PrivateRedis> {
    cleanUpOrphans(PREFIX, removeOrphan);
    const dir = ownedTempDir(PREFIX);
    const redis = new PrivateRedis(dir, await freePort(host), host);
    try {
      await redis.start();
    } catch (error) {
      redis.removeNow();
      throw error;
    }
    return redis;
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined && this.server.exitCode === null && this.server.signalCode === null;
  }

  /** Starts the server (again) on the same port; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) throw new Error('redis-server is already running');
    // protected mode would refuse every client but loopback ones; it listens on this.host alone anyway
    const args = ['--port', String(this.port), '--bind', this.host, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', this.dir];
    const server = spawn('redis-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.server = server;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
      const collect = (data: Buffer) => {
        output = (output + data.toString()).slice(-8192);
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.stdout!.on('data', collect);
      server.stderr!.on('data', collect);
      server.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code} before it was ready:\n${output}`));
      });
    });
    server.stdout!.removeAllListeners('data').resume();
    server.stderr!.removeAllListeners('data').resume();
    writeFileSync(path.join(this.dir, SERVER_PID_FILE), String(server.pid));
  }

  /**
   * Stops the server: `shutdown` is an operator's SHUTDOWN NOSAVE (connections closed in order),
   * `kill` a SIGKILL (a crash: the kernel closes them). Either way it comes back empty.
   */
  async stop(mode: 'shutdown' | 'kill'): Promise<void> {
    const server = this.server;
    if (!server || !this.running) throw new Error('redis-server is not running');
    const exited = once(server, 'exit');
    if (mode === 'kill') {
      server.kill('SIGKILL');
    } else {
      const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => {});
      await client.connect();
      await client.call('SHUTDOWN', 'NOSAVE').catch(() => {}); // the server closes the connection instead of answering
      client.disconnect();
    }
    const timer = setTimeout(() => server.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited.finally(() => clearTimeout(timer));
  }

  /**
   * Freezes the server (SIGSTOP): connections stay open and the kernel still accepts new ones, but
   * no command is ever answered: a hung server (swapping, stuck in a fork), not a refused one.
   */
  freeze(): void {
    if (!this.running) throw new Error('freeze: redis-server is not running');
    this.server!.kill('SIGSTOP');
  }

  /** Undoes freeze(); does nothing to a server that is not running. */
  thaw(): void {
    if (this.running) this.server!.kill('SIGCONT');
  }

  /** A client for the test's own look at the server (keys, subscribers); the caller disconnects it. */
  client(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
    client.on('error', () => {});
    return client;
  }

  /** Stops the server (if running) and deletes its directory. */
  async remove(): Promise<void> {
    this.removeNow();
  }

  private removeNow(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    if (this.server?.pid !== undefined && this.running) killQuietly(this.server.pid, 'SIGKILL'); // a frozen server dies too
    rmSync(this.dir, { recursive: true, force: true });
  }
}
