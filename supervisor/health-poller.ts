import http from 'node:http';
import type { Fleet, FleetWorker, WorkerHealth } from './fleet.ts';

export const WORKER_HEALTH_PATH = '/_worker/health';

/** GET /_worker/health of one worker; undefined when it does not answer 200 with JSON in time. */
export function fetchHealth(host: string, port: number, timeoutMs: number): Promise<WorkerHealth | undefined> {
  return new Promise((resolve) => {
    const request = http.get({ host, port, path: WORKER_HEALTH_PATH, agent: false, timeout: timeoutMs }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        try {
          resolve(response.statusCode === 200 ? (JSON.parse(text) as WorkerHealth) : undefined);
        } catch {
          resolve(undefined);
        }
      });
      response.on('error', () => resolve(undefined));
    });
    request.on('timeout', () => request.destroy(new Error('health check timed out')));
    request.on('error', () => resolve(undefined));
  });
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
