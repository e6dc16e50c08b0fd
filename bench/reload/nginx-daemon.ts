import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProcessAlive } from '../../lib/process-alive.ts';
import { freePort, waitForPort } from '../lib/net.ts';
import { processTree } from '../lib/proc-stats.ts';
import { runCommand } from '../lib/processes.ts';
import { pollUntil, startsNewWorker, type EventOutcome, type ReloadableTarget } from './target.ts';

// nginx as its operators run it when they mean to upgrade it in place: a daemon (its master
// forks away, pid file), since nginx ignores the binary-upgrade signal in a master whose parent is
// still the one that started it (`daemon off` under a supervisor). A reload is `nginx -s reload`
// with the same -p/-c/-g; a replacement is nginx's binary upgrade: SIGUSR2 to the master (a new
// master and its workers start on the inherited listeners), then SIGWINCH and SIGQUIT to the old
// master (its workers stop accepting, finish what they have and exit, then it exits).

export interface NginxDaemonOptions {
  /** absolute path: the binary upgrade re-executes argv[0] */
  binary: string;
  /** nginx.conf for variant 0 or 1 of the reloaded change */
  config: (dir: string, port: number, variant: number) => string;
  /** how long an old master may take to finish its requests */
  graceMs: number;
}

const readPid = (file: string): number | undefined => {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
};

const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
};

export async function startNginxDaemon(options: NginxDaemonOptions): Promise<ReloadableTarget> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-nginx-daemon-'));
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  const pidFile = path.join(dir, 'nginx.pid');
  const errorLog = path.join(dir, 'error.log');
  const args = ['-p', dir, '-e', errorLog, '-c', conf, '-g', `pid ${pidFile};`];
  writeFileSync(conf, options.config(dir, port, 0));
  const started = await runCommand(options.binary, args);
  const first = readPid(pidFile);
  if (started.code !== 0 || first === undefined) throw new Error(`nginx did not start (exit ${started.code}):\n${started.output}`);
  // the daemon made itself a session leader: its group holds every later master and worker too
  const killGroup = () => signal(-first, 'SIGKILL');
  process.once('exit', killGroup);
  const remove = () => {
    killGroup();
    process.off('exit', killGroup);
    rmSync(dir, { recursive: true, force: true });
  };
  await waitForPort(port, undefined).catch((error: unknown) => {
    remove();
    throw error;
  });

  let master = first;
  let oldMaster: number | undefined;
  const oldGone = () => oldMaster === undefined || !isProcessAlive(oldMaster);

  return {
    url: `http://127.0.0.1:${port}`,
    async reload(n: number): Promise<EventOutcome> {
      writeFileSync(conf, options.config(dir, port, n % 2));
      return startsNewWorker(master, async () => {
        const result = await runCommand(options.binary, [...args, '-s', 'reload']);
        return result.code === 0 ? { ok: true } : { ok: false, detail: `nginx -s reload: exit ${result.code}: ${result.output.trim().split('\n').pop()}` };
      });
    },
    async replace(): Promise<EventOutcome> {
      const waitFrom = Date.now();
      // the new master ignores SIGUSR2 while the master it came from is still running
      if (!(await pollUntil(oldGone, 250, options.graceMs))) return { ok: false, detail: 'the previous old master did not exit', waitedMs: Date.now() - waitFrom };
      const waitedMs = Date.now() - waitFrom;
      const old = master;
      if (!signal(old, 'SIGUSR2')) return { ok: false, detail: 'the master is gone', waitedMs };
      let successor: number | undefined;
      const serving = await pollUntil(
        () => {
          const pid = readPid(pidFile);
          successor = pid !== undefined && pid !== old && existsSync(`${pidFile}.oldbin`) ? pid : undefined;
          return successor !== undefined && processTree(successor).length > 1; // its worker runs
        },
        20,
        15_000,
      );
      if (!serving || successor === undefined) return { ok: false, detail: `no new master after SIGUSR2:\n${readFileSync(errorLog, 'utf8').slice(-500)}`, waitedMs };
      master = successor;
      oldMaster = old;
      signal(old, 'SIGWINCH');
      signal(old, 'SIGQUIT');
      return { ok: true, detail: `master ${old} -> ${successor}`, waitedMs };
    },
    async settle() {
      await pollUntil(oldGone, 250, options.graceMs);
    },
    restarts() {
      // a worker that crashed is replaced by its master and logged at [alert]
      const crashed = (readFileSync(errorLog, 'utf8').match(/exited on signal/g) ?? []).length;
      return crashed + (isProcessAlive(master) ? 0 : 1);
    },
    async stop() {
      for (const pid of [master, oldMaster]) if (pid !== undefined) signal(pid, 'SIGTERM');
      await pollUntil(() => processTree(master).every((pid) => !isProcessAlive(pid)) && oldGone(), 100, 5000);
      remove();
    },
  };
}
