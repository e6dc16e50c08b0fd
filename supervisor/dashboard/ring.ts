/** A fixed-size buffer of the newest items, each numbered (seq) in arrival order from 1. */
export class Ring<T> {
  private readonly items: T[] = [];
  private lastSeq = 0;

  constructor(readonly capacity: number) {}

  push(item: T): number {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.shift();
    return ++this.lastSeq;
  }

  get latestSeq(): number {
    return this.lastSeq;
  }

  all(): T[] {
    return [...this.items];
  }

  /** Rewrites every item in place; their numbers stay. */
  update(rewrite: (item: T) => T): void {
    for (let i = 0; i < this.items.length; i++) this.items[i] = rewrite(this.items[i]);
  }

  /** Items after `seq`, or undefined when some of them were already overwritten. */
  after(seq: number): T[] | undefined {
    const missing = this.lastSeq - seq;
    if (missing > this.items.length) return undefined;
    return missing <= 0 ? [] : this.items.slice(this.items.length - missing);
  }
}
