import type { Logger } from '../lib/log.ts';
import { isHandoffMessage, RetiringSlots, SuccessorSlots, type HandoffMessage } from './handoff.ts';
import type { Pool } from './pool.ts';

/** Messages between proxy/master.ts and the proxy processes it runs (besides HandoffMessage). */
export type MasterMessage =
  /** to a process: a successor listens; stop accepting and finish (RetiringSlots) */
  | { type: 'proxy:retire' }
  /** to a successor: the process it replaces */
  | { type: 'proxy:predecessor'; pid: number; generation: number }
  /** to the process that asked for a replacement */
  | { type: 'proxy:replace-answer'; ok: true; successor: { pid: number; generation: number } }
  | { type: 'proxy:replace-answer'; ok: false; error: string }
  /** to a successor: how its predecessor ended */
  | { type: 'proxy:predecessor-exited'; pid: number; code: number | null; signal: string | null; afterMs: number };

export type ProcessMessage = 'ready' | { type: 'proxy:replace' } | HandoffMessage;

export const GENERATION_ENV = 'SWITCHYARD_PROXY_GENERATION';
export const SUCCESSOR_ENV = 'SWITCHYARD_PROXY_SUCCESSOR';
/** how long a replacement may take to start: a successor that does not listen by then is stopped */
export const SUCCESSOR_START_TIMEOUT_MS = 30_000;

export interface ProcessInfo {
  pid: number;
  /** 1 for the master's first proxy process, one more for each replacement */
  generation: number;
  /** false when the process runs alone (no master: no replacement possible) */
  replaceable: boolean;
  retiring: boolean;
  /** the process this one replaced, until it has exited */
  predecessor?: { pid: number; generation: number; exited?: { code: number | null; signal: string | null; afterMs: number } };
}

/**
 * A proxy process's side of replacement (proxy/master.ts is the other): it starts as a successor
 * when the master says so (owning no worker slot until its predecessor reports), retires when
 * told, relays slot handoff messages, and asks the master for its own replacement (the control
 * API's POST /restart).
 */
export class ReplaceableProcess {
  readonly generation: number;
  private readonly underMaster: boolean;
  private readonly successorSlots: SuccessorSlots;
  private retiringSlots: RetiringSlots | undefined;
  private predecessor: ProcessInfo['predecessor'];
  private pendingReplace: ((answer: Extract<MasterMessage, { type: 'proxy:replace-answer' }>) => void) | undefined;

  constructor(
    private readonly pools: Map<string, Pool>,
    private readonly retire: (slots: RetiringSlots) => Promise<void>,
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.underMaster = env[GENERATION_ENV] !== undefined && typeof process.send === 'function';
    this.generation = Number(env[GENERATION_ENV] ?? 1);
    this.successorSlots = new SuccessorSlots(pools, (message) => this.send(message));
    if (this.underMaster && env[SUCCESSOR_ENV] === '1') this.successorSlots.begin();
    if (this.underMaster) process.on('message', (message: unknown) => this.onMessage(message));
  }

  info(): ProcessInfo {
    return {
      pid: process.pid,
      generation: this.generation,
      replaceable: this.underMaster,
      retiring: this.retiringSlots !== undefined,
      ...(this.predecessor && { predecessor: this.predecessor }),
    };
  }

  /** Asks the master to start a successor; resolves once it listens (or the master refuses). */
  requestReplacement(): Promise<Extract<MasterMessage, { type: 'proxy:replace-answer' }>> {
    if (!this.underMaster) return Promise.resolve({ type: 'proxy:replace-answer', ok: false, error: 'this proxy runs without its master (proxy/master.ts): it cannot be replaced in place' });
    if (this.retiringSlots) return Promise.resolve({ type: 'proxy:replace-answer', ok: false, error: 'this process is already being replaced' });
    if (this.pendingReplace) return Promise.resolve({ type: 'proxy:replace-answer', ok: false, error: 'a replacement is already being started' });
    return new Promise((resolve) => {
      // the master answers within its successor start timeout; this bound only guards a lost answer
      const timer = setTimeout(() => this.answerReplace({ type: 'proxy:replace-answer', ok: false, error: 'the master did not answer' }), SUCCESSOR_START_TIMEOUT_MS + 5000);
      this.pendingReplace = (answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
      this.send({ type: 'proxy:replace' });
    });
  }

  private answerReplace(answer: Extract<MasterMessage, { type: 'proxy:replace-answer' }>): void {
    const pending = this.pendingReplace;
    this.pendingReplace = undefined;
    pending?.(answer);
  }

  private onMessage(message: unknown): void {
    if (isHandoffMessage(message)) {
      if (message.type === 'handoff:lend') this.retiringSlots?.onMessage(message);
      else this.successorSlots.onMessage(message);
      return;
    }
    const masterMessage = message as MasterMessage;
    switch (masterMessage?.type) {
      case 'proxy:retire':
        if (this.retiringSlots) return;
        this.retiringSlots = new RetiringSlots(this.pools.values(), (handoff) => this.send(handoff));
        this.retire(this.retiringSlots).then(
          () => process.exit(0),
          (error: Error) => {
            this.log.error({ err: error }, 'retiring failed');
            process.exit(1);
          },
        );
        return;
      case 'proxy:predecessor':
        this.predecessor = { pid: masterMessage.pid, generation: masterMessage.generation };
        return;
      case 'proxy:predecessor-exited':
        this.successorSlots.predecessorGone();
        if (this.predecessor) this.predecessor.exited = { code: masterMessage.code, signal: masterMessage.signal, afterMs: masterMessage.afterMs };
        this.log.info({ predecessor: masterMessage.pid, code: masterMessage.code, signal: masterMessage.signal, afterMs: masterMessage.afterMs }, 'the proxy process this one replaced has exited');
        return;
      case 'proxy:replace-answer':
        this.answerReplace(masterMessage);
        return;
    }
  }

  private send(message: ProcessMessage): void {
    // a master that is gone cannot be told: the process stops on 'disconnect' (lib/process-stop.ts)
    if (process.connected) process.send?.(message);
  }
}
