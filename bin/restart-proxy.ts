import { setTimeout as sleep } from 'node:timers/promises';
import { SUCCESSOR_START_TIMEOUT_MS, type ProcessInfo } from '../proxy/replacement.ts';
import { withSupervisor, type SupervisorClient } from './supervisor-client.ts';

const POLL_MS = 250;
const PROGRESS_EVERY_MS = 5000;

interface ProxyState {
  process?: ProcessInfo;
  pools: Array<{ workers: Array<{ heldElsewhere?: number }> }>;
}

const slotsHeldByPredecessor = (state: ProxyState) => state.pools.reduce((sum, pool) => sum + pool.workers.reduce((held, worker) => held + (worker.heldElsewhere ?? 0), 0), 0);

/**
 * `switchyard restart-proxy [--no-wait]`: the local proxy's master (proxy/master.ts) starts a fresh
 * proxy process from the build on disk; once it listens, the old one finishes what it has (its
 * long clones included, up to proxy.shutdown.graceMs) and exits. Follows it to that end, one line
 * per step; exit 1 when the successor could not start (the old process then keeps serving) or the
 * old one outlives its grace period.
 */
export function restartProxy(args: string[]): Promise<number> {
  const wait = !args.includes('--no-wait');
  return withSupervisor(async (proxy) => {
    const started = Date.now();
    process.stdout.write('starting a new proxy process...\n');
    const answer = await proxy.call<{ from?: { pid: number; generation: number }; to?: { pid: number; generation: number }; error?: string }>('POST', '/restart', {
      acceptStatus: [409],
      timeoutMs: SUCCESSOR_START_TIMEOUT_MS + 10_000,
    });
    if (answer.status === 409) {
      process.stderr.write(`restart-proxy refused: ${answer.body.error}\n`);
      return 1;
    }
    const { from, to } = answer.body as { from: { pid: number; generation: number }; to: { pid: number; generation: number } };
    process.stdout.write(`new proxy pid ${to.pid} (generation ${to.generation}) listening after ${seconds(Date.now() - started)}; old pid ${from.pid} stopped accepting\n`);
    if (!wait) return 0;
    return followRetirement(proxy, from.pid, to.generation);
  }, 'proxy');
}

async function followRetirement(proxy: SupervisorClient, oldPid: number, generation: number): Promise<number> {
  const limitMs = proxy.config.proxy.shutdown.graceMs + 15_000;
  const started = Date.now();
  let lastProgress = started;
  while (Date.now() - started < limitMs) {
    const state = (await proxy.call<ProxyState>('GET', '/state')).body;
    const info = state.process;
    if (info && info.generation !== generation) {
      process.stderr.write(`the proxy serving now is generation ${info.generation} (pid ${info.pid}), not ${generation}: another replacement or a restart came between\n`);
      return 1;
    }
    const exited = info?.predecessor?.exited;
    if (exited) {
      const how = exited.code === 0 ? 'finished its requests and exited' : `exited with ${exited.signal ?? `code ${exited.code}`}`;
      process.stdout.write(`old pid ${oldPid} ${how} after ${seconds(exited.afterMs)}\n`);
      return exited.code === 0 ? 0 : 1;
    }
    if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = Date.now();
      process.stdout.write(`old pid ${oldPid} still finishing: ${slotsHeldByPredecessor(state)} worker slots in use (${seconds(Date.now() - started)})\n`);
    }
    await sleep(POLL_MS);
  }
  process.stderr.write(`old pid ${oldPid} has not exited ${seconds(limitMs)} after the replacement (proxy.shutdown.graceMs is ${proxy.config.proxy.shutdown.graceMs} ms)\n`);
  return 1;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
