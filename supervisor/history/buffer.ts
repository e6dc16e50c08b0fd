/** FIFO with a hard size limit: when full, the oldest item is dropped and counted. */
export class BoundedQueue<T> {
  private items: T[] = [];
  dropped = 0;

  constructor(readonly limit: number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    this.trim();
  }

  /** Removes and returns up to `n` of the oldest items. */
  take(n: number): T[] {
    return this.items.splice(0, n);
  }

  /** Puts items taken earlier back at the front (a failed write); newer items win if that overflows. */
  requeue(items: T[]): void {
    this.items.unshift(...items);
    this.trim();
  }

  private trim(): void {
    const excess = this.items.length - this.limit;
    if (excess > 0) {
      this.items.splice(0, excess);
      this.dropped += excess;
    }
  }
}
