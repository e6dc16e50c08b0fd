/** Something waiting in a fair queue: who asked (the fairness key) and how urgent it is. */
export interface FairlyQueued {
  client: string;
  /** lower is served first */
  priority: number;
  /** when it joined the queue (performance.now() ms) */
  enqueuedAt: number;
}

/** One priority: each client's waiters in arrival order; the Map's order is the clients' turn. */
type Level<T> = { priority: number; lines: Map<string, T[]> };

/**
 * Waiters served by priority, and within a priority one client at a time: the one that has used
 * the least worker time lately, in turn (round-robin) among equals. A client with many requests
 * waits behind its own, not in front of everyone else's, and one whose requests are expensive
 * waits behind those whose requests are cheap. A Map keeps insertion order, so the turn is the Map's order: a client just served goes
 * to the back by being deleted and set again, a newcomer joins at the back.
 */
export class FairQueue<T extends FairlyQueued> {
  private readonly levels: Level<T>[] = [];
  private readonly queuedBy = new Map<string, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** waiters of this client at every priority */
  queuedOf(client: string): number {
    return this.queuedBy.get(client) ?? 0;
  }

  push(item: T): void {
    let level = this.levels.find((candidate) => candidate.priority === item.priority);
    if (!level) {
      level = { priority: item.priority, lines: new Map() };
      this.levels.push(level);
      this.levels.sort((a, b) => a.priority - b.priority);
    }
    const line = level.lines.get(item.client);
    if (line) line.push(item);
    else level.lines.set(item.client, [item]);
    this.queuedBy.set(item.client, this.queuedOf(item.client) + 1);
    this.count++;
  }

  /**
   * The next waiter to serve: most urgent priority first; within it the client whose worker time
   * lately (`usage`, ms) less the time its first waiter has waited is smallest, in turn among
   * equals; skipping the clients `eligible` refuses. Waiting earns credit, so a client that used
   * the pool a moment ago is served before newcomers once it has waited as long as it used:
   * nobody starves behind a stream of new clients.
   */
  next(eligible: (client: string) => boolean, usage: (client: string) => number, now: number): T | undefined {
    for (const level of this.levels) {
      let best: T[] | undefined;
      let bestScore = Infinity;
      for (const [client, line] of level.lines) {
        if (!eligible(client)) continue;
        const score = usage(client) - (now - line[0].enqueuedAt);
        if (score < bestScore) {
          best = line;
          bestScore = score;
        }
      }
      if (best) return best[0];
    }
    return undefined;
  }

  /** Removes a waiter that is being served: its client goes to the back of its priority's turn. */
  take(item: T): void {
    const level = this.levelOf(item);
    const line = level.lines.get(item.client)!;
    line.splice(line.indexOf(item), 1);
    level.lines.delete(item.client);
    if (line.length > 0) level.lines.set(item.client, line);
    this.forget(item);
  }

  /** Removes a waiter that gave up (timeout, cancel): its client keeps its place in the turn. */
  remove(item: T): void {
    const level = this.levelOf(item);
    const line = level.lines.get(item.client)!;
    line.splice(line.indexOf(item), 1);
    if (line.length === 0) level.lines.delete(item.client);
    this.forget(item);
  }

  /**
   * Who gives way when the queue is full and `arriving` comes: the newest waiter of the client with
   * the most waiters at the least urgent priority below the newcomer's; at its own priority, only a
   * client with at least two more waiters than the newcomer's client (so a flood from one client
   * cannot lock others out, and two clients never push each other out in turn). Undefined: the
   * newcomer is the one refused.
   */
  victimFor(arriving: FairlyQueued): T | undefined {
    for (let index = this.levels.length - 1; index >= 0; index--) {
      const level = this.levels[index];
      if (level.priority < arriving.priority) return undefined;
      let heaviest: T[] | undefined;
      for (const line of level.lines.values()) if (!heaviest || line.length > heaviest.length) heaviest = line;
      if (!heaviest) continue;
      const newest = heaviest[heaviest.length - 1];
      if (level.priority > arriving.priority) return newest;
      const ownLine = level.lines.get(arriving.client)?.length ?? 0;
      return heaviest.length >= ownLine + 2 ? newest : undefined;
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const level of this.levels) for (const line of level.lines.values()) yield* line;
  }

  private levelOf(item: T): Level<T> {
    return this.levels.find((candidate) => candidate.priority === item.priority)!;
  }

  private forget(item: T): void {
    const left = this.queuedOf(item.client) - 1;
    if (left > 0) this.queuedBy.set(item.client, left);
    else this.queuedBy.delete(item.client);
    this.count--;
  }
}
