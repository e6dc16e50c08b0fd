/**
 * Measures how fast a client moves bytes while we are waiting for it (time spent waiting on
 * anything else does not count): in every window of rateWindowMs of waiting, at least
 * minBytesPerSec worth of bytes must move. Request bodies use it for what the client sends,
 * responses for what it reads while its worker waits.
 */
export class RateGuard {
  private waitedMs = 0;
  private waitingSince: number | undefined;
  private windowStartWaited = 0;
  private windowStartBytes = 0;
  bytes = 0;

  constructor(
    private readonly minBytesPerSec: number,
    private readonly windowMs: number,
  ) {}

  startWaiting(now: number): void {
    if (this.waitingSince === undefined) this.waitingSince = now;
  }

  stopWaiting(now: number): void {
    if (this.waitingSince === undefined) return;
    this.waitedMs += now - this.waitingSince;
    this.waitingSince = undefined;
  }

  /** time spent waiting for the client so far */
  waited(now: number): number {
    return this.waitedMs + (this.waitingSince === undefined ? 0 : now - this.waitingSince);
  }

  /** true when a whole window of waiting brought fewer bytes than the minimum rate asks */
  tooSlow(now: number): boolean {
    if (this.minBytesPerSec === 0) return false;
    const waited = this.waited(now);
    if (waited - this.windowStartWaited < this.windowMs) return false;
    if (this.bytes - this.windowStartBytes < (this.minBytesPerSec * this.windowMs) / 1000) return true;
    this.windowStartWaited = waited;
    this.windowStartBytes = this.bytes;
    return false;
  }
}

