import type { Logger } from './log.ts';

/**
 * One log line per `intervalMs` at most for an event anyone may cause over and over (forged
 * messages, wrong tokens): the first is written, the rest counted, and the next line written
 * says how many were left out. Constant memory.
 */
export class ThrottledLog {
  private lastAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
    private readonly level: 'warn' | 'error' | 'info' = 'warn',
  ) {}

  /** Writes the line unless one was written less than intervalMs ago; true when written. */
  write(fields: Record<string, unknown>, message: string, now = Date.now()): boolean {
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return false;
    }
    this.log[this.level](this.suppressed > 0 ? { ...fields, suppressed: this.suppressed } : fields, message);
    this.lastAt = now;
    this.suppressed = 0;
    return true;
  }
}
