// A PostgreSQL cluster of a test's own, for outage tests that really stop, start and freeze the
// server: the machine's shared server on 5432 stays untouched (other tests use it). initdb and
// pg_ctl refuse to run as root, so as root they run as the `postgres` user (runuser). The cluster
// lives in a temp dir with its socket, listens on a free loopback port (or a given address), and is stopped and removed
// by remove(), at process exit, or by the next test that finds it orphaned.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanUpOrphans, ownedTempDir } from './owned-dirs.ts';
import { freePort } from './worker-harness.ts';

const execFileAsync = promisify(execFile);
const PREFIX = 'switchyard-pg-';
const COMMAND_TIMEOUT_MS = 60_000;

/** The newest PostgreSQL server binaries: PG_BIN, else /usr/lib/postgresql/<version>/bin. */
function serverBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((version) => path.join(root, version, 'bin')).find((dir) => existsSync(path.join(dir, 'pg_ctl')));
  if (!found) throw new Error('no PostgreSQL server binaries (set PG_BIN to the directory holding initdb and pg_ctl)');
  return found;
}

const asRoot = process.getuid?.() === 0;

/** argv for a server tool, as the postgres user when we are root. */
function serverCommand(bin: string, tool: string, args: string[]): [string, string[]] {
  const file = path.join(bin, tool);
  return asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

function stopAndRemoveNow(bin: string, dir: string): void {
  const data = path.join(dir, 'data');
  if (existsSync(path.join(data, 'postmaster.pid'))) {
    const [command, args] = serverCommand(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop']);
    spawnSync(command, args, { stdio: 'ignore', timeout: 15_000 });
  }
  rmSync(dir, { recursive: true, force: true });
}

export interface PrivatePostgresOptions {
  /** extra server settings (`-c name=value`) */
  settings?: Record<string, string | number>;
  /** listen on this address instead of loopback, and trust connections from `allow` (a CIDR) */
  listen?: { address: string; allow: string };
}

export class PrivatePostgres {
  private removed = false;
  private readonly onExit = () => this.removeNow();

  private constructor(
    private readonly bin: string,
    /** the temp dir holding the data directory, the socket and the server log */
    readonly dir: string,
    readonly port: number,
    private readonly settings: Record<string, string | number>,
    /** the address it listens on */
    readonly host: string,
  ) {
    process.once('exit', this.onExit);
  }

  /** initdb (trust auth for local connections, user postgres) and start on a free port. */
  static async create(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
    const bin = serverBinDir();
    cleanUpOrphans(PREFIX, (dir) => stopAndRemoveNow(bin, dir));
    const dir = ownedTempDir(PREFIX);
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      await chown(dir, uid, gid);
    }
    const host = options.listen?.address ?? '127.0.0.1';
    const server = new PrivatePostgres(bin, dir, await freePort(host), { fsync: 'off', ...options.settings }, host);
    try {
      await server.tool('initdb', ['-D', server.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
      if (options.listen) appendFileSync(path.join(server.dataDir, 'pg_hba.conf'), `host all all ${options.listen.allow} trust\n`);
      await server.start();
    } catch (error) {
      server.removeNow();
      throw error;
    }
    return server;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@${this.host}:${this.port}/${database}`;
  }

  /** The server log, for a failing test's message. */
  log(): string {
    try {
      return readFileSync(path.join(this.dir, 'server.log'), 'utf8');
    } catch {
      return '';
    }
  }

  private async tool(name: string, args: string[]): Promise<void> {
    const [command, argv] = serverCommand(this.bin, name, args);
    try {
      await execFileAsync(command, argv, { timeout: COMMAND_TIMEOUT_MS });
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${name} failed: ${failed.message}\n${failed.stdout ?? ''}${failed.stderr ?? ''}\n${this.log().slice(-2000)}`);
    }
  }

  /** Starts the server and waits until it accepts connections (on the same port every time). */
  async start(): Promise<void> {
    const options = [
      `-p ${this.port}`,
      `-k ${this.dir}`,
      `-c listen_addresses=${this.host}`,
      ...Object.entries(this.settings).map(([name, value]) => `-c ${name}=${value}`),
    ].join(' ');
    await this.tool('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
  }

  /**
   * Stops the server: `fast` ends every session with an error (an operator's restart), `immediate`
   * drops them without a word (a crash). New connections are refused afterwards.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.tool('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** The server's processes: the postmaster and every backend it forked (none when it is stopped). */
  private serverPids(): number[] {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return [];
    const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n', 1)[0]);
    const children: number[] = [];
    for (const name of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) children.push(Number(name));
      } catch {
        // ended meanwhile
      }
    }
    return [postmaster, ...children];
  }

  /**
   * Freezes the whole server (SIGSTOP): connections are still accepted by the kernel but nothing
   * answers, and a query in flight never returns: a hung server, not a refused one.
   */
  freeze(): void {
    const pids = this.serverPids();
    if (pids.length === 0) throw new Error('freeze: the server is not running');
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
  }

  /** Undoes freeze(); does nothing to a server that is not frozen or not running. */
  thaw(): void {
    for (const pid of this.serverPids()) process.kill(pid, 'SIGCONT');
  }

  /** Stops the server (if running) and deletes everything it had. */
  async remove(): Promise<void> {
    this.removeNow();
  }

  private removeNow(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    try {
      this.thaw(); // a frozen server would not act on pg_ctl stop
    } catch {
      // ended meanwhile
    }
    stopAndRemoveNow(this.bin, this.dir);
  }
}
