/** An entry of a DeadlineList: the list links entries through these fields. */
export interface Deadlined {
  deadline: number;
  previousInList?: Deadlined;
  nextInList?: Deadlined;
}

/**
 * Entries that all wait the same time, in the order they were added, so the ones due are always
 * at the head. Used for per-request deadlines instead of a timer or a Set entry per request: both
 * leave long-lived structures pointing at short-lived requests, which makes V8 promote whole
 * request object graphs out of the young generation and multiplies GC time. Unlinking clears an
 * entry's pointers, so a dead entry never keeps a newer one alive.
 */
export class DeadlineList<T extends Deadlined> {
  private head: T | undefined;
  private tail: T | undefined;

  add(entry: T, deadline: number): void {
    entry.deadline = deadline;
    entry.previousInList = this.tail;
    entry.nextInList = undefined;
    if (this.tail) this.tail.nextInList = entry;
    else this.head = entry;
    this.tail = entry;
  }

  remove(entry: T): void {
    if (entry.previousInList === undefined && this.head !== entry) return; // not in the list
    if (entry.previousInList) entry.previousInList.nextInList = entry.nextInList;
    else this.head = entry.nextInList as T | undefined;
    if (entry.nextInList) entry.nextInList.previousInList = entry.previousInList;
    else this.tail = entry.previousInList as T | undefined;
    entry.previousInList = undefined;
    entry.nextInList = undefined;
  }

  /** Removes and hands over every entry whose deadline has passed. */
  expire(now: number, onExpired: (entry: T) => void): void {
    while (this.head && this.head.deadline <= now) {
      const entry = this.head;
      this.remove(entry);
      onExpired(entry);
    }
  }
}
