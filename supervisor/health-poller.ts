import { probeGet } from '../lib/http-probe.ts';
import { foreignStack, OWN_STACK_ID } from '../lib/stack-id.ts';
import type { Fleet, FleetWorker, WorkerHealth } from './fleet.ts';

export const WORKER_HEALTH_PATH = '/_worker/health';

/** GET /_worker/health of one worker; undefined when it does not answer 200 with JSON of our stack in time. */
export async function fetchHealth(host: string, port: number, timeoutMs: number): Promise<WorkerHealth | undefined> {
  const answer = await probeGet({ host, port, path: WORKER_HEALTH_PATH, timeoutMs }, { readBody: true });
  if (answer?.status !== 200) return undefined;
  try {
    const health = JSON.parse(answer.body) as WorkerHealth;
    // a process of an earlier launch holding the port is not the worker PM2 runs for us
    return foreignStack(OWN_STACK_ID, health) === undefined ? health : undefined;
  } catch {
    return undefined;
  }
}

/** Polls every worker's health on an interval and feeds the fleet model; `afterPoll` runs after each round. */
export class HealthPoller {
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly fleet: Fleet,
    private readonly options: { intervalMs: number; timeoutMs: number },
    private readonly afterPoll: (workers: FleetWorker[]) => void,
  ) {}

  start(): void {
    void this.pollAll();
    this.timer = setInterval(() => void this.pollAll(), this.options.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async pollAll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const workers = this.fleet.all();
      await Promise.all(
        workers.map(async (worker) => this.fleet.observeHealth(worker, await fetchHealth(worker.host, worker.port, this.options.timeoutMs))),
      );
      this.afterPoll(workers);
    } finally {
      this.polling = false;
    }
  }
}
