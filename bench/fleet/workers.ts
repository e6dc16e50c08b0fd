import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startWorker, type RunningWorker } from '../../test/helpers/worker-harness.ts';

// The worker fleet every target of a scenario fronts: reference workers (worker/main.ts, one app
// request at a time) in named pools, started fresh for each target so RSS starts clean.

export interface FleetWorker {
  pool: string;
  index: number;
  /** host:port */
  address: string;
  pid: number;
}

export interface Fleet {
  workers: FleetWorker[];
  /** host:port of each worker of the pools named */
  addresses(...pools: string[]): string[];
  pids(): number[];
  stop(): Promise<void>;
}

const alive = new Set<RunningWorker>();
process.once('exit', () => {
  for (const worker of alive) worker.process.kill('SIGKILL');
});

/** Starts layout[pool] workers per pool over `repos` (e.g. { web: 2, clone: 3 }). */
export async function startFleet(layout: Record<string, number>, repos: string): Promise<Fleet> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'switchyard-bench-fleet-'));
  const plan = Object.entries(layout).flatMap(([pool, count]) => Array.from({ length: count }, (_, index) => ({ pool, index })));
  const running = await Promise.all(
    plan.map(async ({ pool, index }) => {
      const worker = await startWorker({ data, repos, env: { SWITCHYARD_POOL: pool, SWITCHYARD_WORKER_INDEX: String(index), LOG_LEVEL: 'warn' } });
      alive.add(worker);
      return worker;
    }),
  );
  const workers = plan.map(({ pool, index }, i) => ({ pool, index, address: `127.0.0.1:${running[i].port}`, pid: running[i].process.pid! }));
  return {
    workers,
    addresses: (...pools) => workers.filter((worker) => pools.includes(worker.pool)).map((worker) => worker.address),
    pids: () => workers.map((worker) => worker.pid),
    async stop() {
      await Promise.all(running.map((worker) => worker.stop().then(() => alive.delete(worker))));
      await rm(data, { recursive: true, force: true });
    },
  };
}
