import type { Lane } from '../lib/config.ts';
import { RecentUsage } from './recent-usage.ts';
import type { Upstream } from './upstream.ts';

/** A slot on a worker, held from dispatch until the worker has produced its whole response. */
export class Slot {
  private released = false;

  /** when the slot was taken: what the client is charged for on release */
  readonly takenAt = performance.now();

  constructor(
    private readonly ledger: SlotLedger,
    readonly upstream: Upstream,
    readonly client: string,
    readonly lane: Lane,
  ) {}

  /** Idempotent: a second release frees nothing. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.ledger.released(this);
  }
}

/**
 * Who holds a pool's slots: per client, how many and since when, and the worker time each client
 * used lately (recent-usage.ts). The queue asks it who may take another slot and who has used
 * the least; it knows nothing of the queue.
 */
export class SlotLedger {
  /** slots held per client, and the sum of when they were taken (entries leave at zero: bounded by the pool's slots) */
  private readonly heldBy = new Map<string, { slots: number; takenAtSum: number }>();
  private readonly held = new Set<Slot>();
  private readonly usage = new RecentUsage();
  private maxInFlight = Infinity;

  constructor(
    /** slots one client may hold at once (0: no limit) */
    maxInFlight: number,
    /** called after every release, to hand the slot on */
    private readonly onRelease: () => void,
  ) {
    this.setMaxInFlight(maxInFlight);
  }

  /** A reload's new share: clients above it keep their slots and take no more until below. */
  setMaxInFlight(maxInFlight: number): void {
    this.maxInFlight = maxInFlight === 0 ? Infinity : maxInFlight;
  }

  take(upstream: Upstream, client: string, lane: Lane): Slot {
    upstream.slotTaken();
    const slot = new Slot(this, upstream, client, lane);
    const held = this.heldBy.get(client);
    if (held) {
      held.slots++;
      held.takenAtSum += slot.takenAt;
    } else this.heldBy.set(client, { slots: 1, takenAtSum: slot.takenAt });
    this.held.add(slot);
    return slot;
  }

  /** Called by Slot.release: the client is charged for the worker time it held. */
  released(slot: Slot): void {
    slot.upstream.slotFreed();
    const now = performance.now();
    this.usage.charge(slot.client, now - slot.takenAt, now);
    this.held.delete(slot);
    const held = this.heldBy.get(slot.client);
    if (held && held.slots > 1) {
      held.slots--;
      held.takenAtSum -= slot.takenAt;
    } else this.heldBy.delete(slot.client);
    this.onRelease();
  }

  mayHoldAnother(client: string): boolean {
    return (this.heldBy.get(client)?.slots ?? 0) < this.maxInFlight;
  }

  /** worker time the client used lately, its requests in flight included (charged for good on release) */
  usageOf(client: string, now: number): number {
    const held = this.heldBy.get(client);
    return this.usage.of(client, now) + (held ? held.slots * now - held.takenAtSum : 0);
  }

  /** the slots held now */
  holders(): Iterable<Slot> {
    return this.held;
  }
}
