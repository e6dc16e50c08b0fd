// One seeded hostile conversation over a raw socket (cases.ts), and many of them a few at a time:
// shared by the fuzz runner (run.ts) and the hardening benchmark (bench/hardening), which aims
// them at nginx and HAProxy as well.
import net from 'node:net';
import { sleep } from '../helpers/http.ts';
import { fuzzCase, type FuzzCase } from './cases.ts';

/** how the conversation ended: the first status the server sent, or how it ended without one */
export type Outcome = { key: string; hung: boolean };

/** A client that still reads must see the server answer or close within this. */
export const HANG_DEADLINE_MS = 15_000;

export interface ConverseOptions {
  /** the client's source address (a loopback address of its own, e.g. to stay out of trustedProxies) */
  localAddress?: string;
}

/** One conversation: writes its pieces, then reads, aborts, half-closes or never reads. */
export function converse(port: number, fuzz: FuzzCase, options: ConverseOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      socket.destroy();
      resolve(outcome);
    };
    const answered = () => {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(received.toString('latin1', 0, 16))?.[1];
      return status ?? (received.length > 0 ? 'garbled' : 'closed');
    };
    const deadline = setTimeout(() => finish({ key: answered(), hung: fuzz.behaviour === 'read' || fuzz.behaviour === 'half-close' }), HANG_DEADLINE_MS);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (received.length < 64) received = Buffer.concat([received, chunk]);
    });
    socket.on('close', () => finish({ key: answered(), hung: false }));
    socket.once('connect', async () => {
      for (const piece of fuzz.pieces) {
        if (piece.delayMs > 0) await sleep(piece.delayMs);
        if (socket.destroyed) return;
        socket.write(piece.bytes);
      }
      if (fuzz.behaviour === 'abort-after-send') return finish({ key: 'aborted', hung: false });
      if (fuzz.behaviour === 'half-close') socket.end();
      if (fuzz.behaviour === 'never-read') {
        socket.pause();
        await sleep(300);
        finish({ key: 'not-read', hung: false });
      }
    });
  });
}

export interface ConversationsOptions extends ConverseOptions {
  port: number;
  seed: number;
  /** the first case index */
  from: number;
  /** at most this many cases */
  count: number;
  /** conversations at once */
  concurrency: number;
  /** checked before each new conversation: false stops starting them */
  shouldContinue?: () => boolean;
  /** after each conversation, with how many have ended so far */
  onOutcome(fuzz: FuzzCase, outcome: Outcome, done: number): void;
}

/** Runs cases from..from+count of the seed, `concurrency` at a time; resolves with how many ran. */
export async function runConversations(options: ConversationsOptions): Promise<number> {
  const { port, seed, from, count, concurrency, shouldContinue = () => true } = options;
  let next = from;
  let done = 0;
  const lane = async () => {
    while (next < from + count && shouldContinue()) {
      const fuzz = fuzzCase(seed, next++);
      const outcome = await converse(port, fuzz, options);
      options.onOutcome(fuzz, outcome, ++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return done;
}
