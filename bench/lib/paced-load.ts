import http from 'node:http';
import { cpuTimeMs } from './cpu.ts';
import { loadResult, type LoadResult } from './load.ts';

export interface PacedLoadOptions {
  url: string;
  /** requests per second, spread evenly over every second */
  rate: number;
  durationSec: number;
  /** keep-alive connections the generator may open (a cap, not a target) */
  connections: number;
  /** charge the CPU time of this process (and its children) to the run */
  pid?: number;
  onProgress?: (responses: number, elapsedSec: number) => void;
}

const TICK_MS = 1;

/**
 * Open-loop load at a fixed rate: requests leave on a 1 ms clock, as many each tick as the rate
 * says are due, whether or not earlier ones have been answered. (autocannon's `overallRate`
 * instead lets every connection send its whole per-second quota back to back and then wait, so
 * half of each second runs at saturation and its percentiles measure queueing, not the proxy.)
 * A request's latency runs from its send to the end of its response; sends never wait for
 * answers (past the connection cap, they wait in the agent, on the clock), so a target that falls
 * behind is charged for its backlog (no coordinated omission).
 */
export async function runPacedLoad(options: PacedLoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const total = Math.round(options.rate * options.durationSec);
  const latencies = new Float64Array(total);
  let sent = 0;
  let count = 0;
  let errors = 0;
  let non2xx = 0;
  let settled = 0;
  let allSettled = () => {};
  const done = new Promise<void>((resolve) => (allSettled = resolve));
  const settle = () => {
    if (++settled === total) allSettled();
  };

  const send = () => {
    const sentAt = performance.now();
    let finished = false;
    // a request that fails after its response began may report the failure on both objects
    const finish = (outcome: 'ok' | 'non2xx' | 'error') => {
      if (finished) return;
      finished = true;
      if (outcome === 'ok') latencies[count++] = performance.now() - sentAt;
      else if (outcome === 'non2xx') non2xx++;
      else errors++;
      settle();
    };
    const request = http.get({ host: target.hostname, port: target.port, path: target.pathname, agent }, (response) => {
      response.resume();
      response.once('end', () => {
        const status = response.statusCode ?? 0;
        finish(status >= 200 && status < 300 ? 'ok' : 'non2xx');
      });
      response.once('error', () => finish('error'));
    });
    request.setTimeout(10_000, () => request.destroy(new Error('timed out')));
    request.once('error', () => finish('error'));
  };

  const cpuBefore = cpuTimeMs(options.pid);
  const startedAt = performance.now();
  const elapsedSec = () => (performance.now() - startedAt) / 1000;
  const clock = setInterval(() => {
    const due = Math.min(total, Math.floor(elapsedSec() * options.rate));
    for (; sent < due; sent++) send();
    if (sent === total) clearInterval(clock);
  }, TICK_MS);
  const ticker = options.onProgress && setInterval(() => options.onProgress!(count, elapsedSec()), 1000);
  try {
    if (total > 0) await done;
    const seconds = elapsedSec();
    return loadResult(latencies, count, seconds, cpuTimeMs(options.pid) - cpuBefore, errors, non2xx);
  } finally {
    clearInterval(clock);
    if (ticker) clearInterval(ticker);
    agent.destroy();
  }
}
