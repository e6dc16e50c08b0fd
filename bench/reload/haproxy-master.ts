import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startExternalTarget } from '../lib/target.ts';
import { startsNewWorker, type EventOutcome, type ReloadableTarget } from './target.ts';

// HAProxy in master-worker mode (-W), as its operators run it: SIGUSR2 to the master re-executes it
// with the config on disk; it starts a new worker and passes it the listening sockets over the old
// worker's socket pair (2.6 adds `-x sockpair@...` itself: the seamless reload), and the old worker
// finishes its connections and exits. Reloads and replacements are both master reloads; a
// replacement leaves the config as it is.

export interface HaproxyMasterOptions {
  binary: string;
  /** haproxy.cfg for variant 0 or 1 of the reloaded change */
  config: (port: number, variant: number) => string;
}

export async function startHaproxyMaster(options: HaproxyMasterOptions): Promise<ReloadableTarget> {
  let write: (variant: number) => void = () => {};
  const target = await startExternalTarget('haproxy-master', options.binary, (dir, port) => {
    const conf = path.join(dir, 'haproxy.cfg');
    write = (variant) => writeFileSync(conf, options.config(port, variant));
    write(0);
    return ['-W', '-db', '-f', conf];
  });
  // the master logs a worker that died unasked as "Current worker (<pid>) exited with code ..."
  let crashed = 0;
  target.child.onLine((line) => {
    if (/Current worker .*exited/.test(line)) crashed++;
  });
  const master = target.child.process;
  const reloadMaster = () => startsNewWorker(master.pid!, () => (master.kill('SIGUSR2') ? { ok: true } : { ok: false, detail: 'the master is gone' }));
  return {
    url: target.url,
    async reload(n: number) {
      write(n % 2);
      return reloadMaster();
    },
    replace: async () => reloadMaster(),
    // an old worker finishes on its own; nothing waits on it
    settle: async () => {},
    restarts: () => crashed + (master.exitCode === null && master.signalCode === null ? 0 : 1),
    stop: () => target.stop(),
  };
}
