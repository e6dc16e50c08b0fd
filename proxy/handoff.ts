import type { Lane } from '../lib/config.ts';
import { createBalancer } from './balancer.ts';
import type { AcquireRequest, Pool } from './pool.ts';
import type { Upstream, UpstreamState } from './upstream.ts';

/**
 * Worker slots while one proxy process replaces another (proxy/master.ts runs both). A worker is
 * single-threaded: the two processes together must never send it more than its concurrency, so
 * every slot belongs to exactly one of them at any time:
 * - the successor starts owning none: until the retiring process has said what it holds, it
 *   accepts and queues requests but sends none;
 * - the retiring process keeps the slots it holds and fills each once more as it frees, for a
 *   request of its own that waits (one that arrived on a keep-alive connection it had); a slot that
 *   frees and finds none of its requests waiting goes to the successor (a report of what it still
 *   holds);
 * - when the retiring process needs a slot it does not hold, it borrows one: the request queues in
 *   the successor's pool like any other (same client key, same priority), and the slot it gets is
 *   lent instead of used.
 * The successor counts a worker's slots held elsewhere as the retiring process's last report plus
 * the loans that report had not seen yet, so a report crossing a loan on the wire counts neither
 * twice nor never. Messages between the two go through the master, in order each way.
 */
export type HandoffMessage =
  | {
      type: 'handoff:held';
      /** loans received before this report */
      loansSeen: number;
      /** slots held per worker name */
      slots: Record<string, number>;
      /** requests waiting per pool: borrows beyond that many are no longer needed */
      waiting: Record<string, number>;
      /** worker states the supervisor set (drains), in the first report only */
      states?: Record<string, UpstreamState>;
    }
  | { type: 'handoff:borrow'; pool: string; key: string; client: string; lane: Lane; priority: number }
  | { type: 'handoff:lend'; pool: string; worker: string }
  | { type: 'handoff:predecessor-gone' };

export function isHandoffMessage(message: unknown): message is HandoffMessage {
  return typeof message === 'object' && message !== null && String((message as { type?: unknown }).type).startsWith('handoff:');
}

type Send = (message: HandoffMessage) => void;

function upstreamsByName(pools: Iterable<Pool>): Map<string, { pool: Pool; upstream: Upstream }> {
  const byName = new Map<string, { pool: Pool; upstream: Upstream }>();
  for (const pool of pools) for (const upstream of pool.upstreams) byName.set(upstream.name, { pool, upstream });
  return byName;
}

/** The retiring process's side. */
export class RetiringSlots {
  private loansSeen = 0;
  private readonly pools: Pool[];
  private readonly byName: Map<string, { pool: Pool; upstream: Upstream }>;

  constructor(
    pools: Iterable<Pool>,
    private readonly send: Send,
  ) {
    this.pools = [...pools];
    this.byName = upstreamsByName(this.pools);
  }

  /** From now on this process holds only what it holds; reports it, with the supervisor's drains. */
  begin(): void {
    const slots = { borrow: (pool: Pool, request: AcquireRequest) => this.borrow(pool, request), released: () => this.report() };
    for (const pool of this.pools) pool.retire(slots);
    const states: Record<string, UpstreamState> = {};
    for (const [name, { upstream }] of this.byName) if (upstream.state === 'draining') states[name] = upstream.state;
    this.report(states);
  }

  onMessage(message: HandoffMessage): void {
    if (message.type !== 'handoff:lend') return;
    this.loansSeen++;
    const found = this.byName.get(message.worker);
    if (found) found.pool.lend(found.upstream);
    this.report();
  }

  private borrow(pool: Pool, request: AcquireRequest): void {
    this.send({ type: 'handoff:borrow', pool: pool.name, key: request.key, client: request.client, lane: request.lane, priority: request.priority });
  }

  private report(states?: Record<string, UpstreamState>): void {
    const slots: Record<string, number> = {};
    for (const [name, { upstream }] of this.byName) if (upstream.inflight > 0) slots[name] = upstream.inflight;
    const waiting: Record<string, number> = {};
    for (const pool of this.pools) waiting[pool.name] = pool.queueDepth;
    this.send({ type: 'handoff:held', loansSeen: this.loansSeen, slots, waiting, ...(states && { states }) });
  }
}

/** The successor's side. */
export class SuccessorSlots {
  private reported: Record<string, number> | undefined;
  /** loans sent that the retiring process's last report had not seen: their order numbers and workers */
  private unseenLoans: Array<{ number: number; worker: string }> = [];
  private loansSent = 0;
  /** borrows queued in this process's pools, oldest first, with their cancel functions */
  private readonly pendingBorrows = new Map<string, Array<() => void>>();
  private gone = false;
  private readonly balancers = new Map<string, ReturnType<typeof createBalancer>>();

  constructor(
    private readonly pools: Map<string, Pool>,
    private readonly send: Send,
  ) {}

  /** read afresh each time: a config reload may have added or removed workers since this process started */
  private get byName(): Map<string, { pool: Pool; upstream: Upstream }> {
    return upstreamsByName(this.pools.values());
  }

  /** Until the retiring process reports, every slot counts as its own. */
  begin(): void {
    for (const { upstream } of this.byName.values()) upstream.setHeldElsewhere(upstream.concurrency);
  }

  get waitingForReport(): boolean {
    return this.reported === undefined && !this.gone;
  }

  onMessage(message: HandoffMessage): void {
    if (this.gone) return;
    if (message.type === 'handoff:held') {
      const first = this.reported === undefined;
      this.reported = message.slots;
      this.unseenLoans = this.unseenLoans.filter((loan) => loan.number > message.loansSeen);
      if (first && message.states) {
        const byName = this.byName;
        for (const [name, state] of Object.entries(message.states)) {
          const found = byName.get(name);
          if (found) found.pool.setState(found.upstream, state);
        }
      }
      this.dropUnneededBorrows(message.waiting);
      this.countHeldElsewhere();
      this.dispatchAll();
    } else if (message.type === 'handoff:borrow') this.lendTo(message);
    else if (message.type === 'handoff:predecessor-gone') this.predecessorGone();
  }

  /** The retiring process exited (or never reported): its slots are free. */
  predecessorGone(): void {
    this.gone = true;
    this.reported = {};
    this.unseenLoans = [];
    this.dropUnneededBorrows({});
    this.countHeldElsewhere();
    this.dispatchAll();
  }

  private lendTo(message: Extract<HandoffMessage, { type: 'handoff:borrow' }>): void {
    const pool = this.pools.get(message.pool);
    if (!pool) return;
    let balancer = this.balancers.get(pool.name);
    if (!balancer) this.balancers.set(pool.name, (balancer = createBalancer('least-outstanding')));
    const request: AcquireRequest = { balancer, key: message.key, client: message.client, lane: message.lane, priority: message.priority };
    let pending = this.pendingBorrows.get(pool.name);
    if (!pending) this.pendingBorrows.set(pool.name, (pending = []));
    const queued = pending;
    let cancel: (() => void) | undefined;
    let answered = false;
    // A refusal (queue full, timed out) needs no answer: the borrower's own waiter times out.
    cancel = pool.acquire(request, (_failure, slot) => {
      answered = true;
      const at = cancel ? queued.indexOf(cancel) : -1;
      if (at >= 0) queued.splice(at, 1);
      if (!slot) return;
      if (this.gone) return slot.release();
      this.unseenLoans.push({ number: ++this.loansSent, worker: slot.upstream.name });
      // counted as held elsewhere before the release, so the release hands it to no one here
      this.countHeldElsewhere();
      slot.release();
      this.send({ type: 'handoff:lend', pool: pool.name, worker: slot.upstream.name });
    });
    if (!answered) queued.push(cancel);
  }

  /** The retiring process reports how many of its requests still wait: borrows past that many are cancelled, newest first. */
  private dropUnneededBorrows(waiting: Record<string, number>): void {
    for (const [pool, pending] of this.pendingBorrows) {
      const needed = waiting[pool] ?? 0;
      while (pending.length > needed) pending.pop()!();
    }
  }

  private countHeldElsewhere(): void {
    const held = new Map<string, number>(Object.entries(this.reported ?? {}));
    for (const loan of this.unseenLoans) held.set(loan.worker, (held.get(loan.worker) ?? 0) + 1);
    for (const [name, { upstream }] of this.byName) {
      upstream.setHeldElsewhere(this.reported === undefined ? upstream.concurrency : (held.get(name) ?? 0));
    }
  }

  private dispatchAll(): void {
    for (const pool of this.pools.values()) pool.dispatch();
  }
}
