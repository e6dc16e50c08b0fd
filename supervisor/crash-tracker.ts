/** Counts crashes per worker in a sliding window, to tell a crash loop from a one-off crash. */
export class CrashTracker {
  private readonly crashes = new Map<string, number[]>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly loopThreshold = 3,
  ) {}

  /** Records a crash; returns how many happened in the window and whether that is a loop. */
  record(worker: string, now = Date.now()): { inWindow: number; loop: boolean } {
    const recent = (this.crashes.get(worker) ?? []).filter((at) => now - at < this.windowMs);
    recent.push(now);
    this.crashes.set(worker, recent);
    return { inWindow: recent.length, loop: recent.length >= this.loopThreshold };
  }
}
