/**
 * The one owner of a process's periodic work: each job is named and listed in one place, its
 * timer never keeps the process alive, and stop() ends them all. A job's throw is logged by the
 * caller's wrapper, not here: jobs catch their own errors.
 */
export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** Runs `job` every `intervalMs` (and once now, with `runNow`). */
  every(name: string, intervalMs: number, job: () => void, runNow = false): void {
    if (this.timers.has(name)) throw new Error(`periodic job ${name} is already scheduled`);
    if (runNow) job();
    const timer = setInterval(job, intervalMs);
    timer.unref();
    this.timers.set(name, timer);
  }

  /** the jobs scheduled now, by name */
  get jobs(): string[] {
    return [...this.timers.keys()];
  }

  stop(): void {
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
  }
}
