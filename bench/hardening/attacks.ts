import type net from 'node:net';
import { runConversations } from '../../test/fuzz/conversation.ts';
import { rawConversation, sleep, statusOf } from '../../test/helpers/http.ts';
import { HUGE_FILE, LARGE_FILE } from './repos.ts';

// The attacks of issue 17, each kept up for as long as a phase lasts: a connection that ends is
// replaced by a new one, so the target faces the same number of attackers throughout. Each
// attack comes from a loopback address of its own, outside the proxy's trustedProxies.

export interface AttackSettings {
  /** slow-body connections at once */
  slowBodies: number;
  /** fake-upgrade connections at once */
  fakeUpgrades: number;
  /** fuzz conversations at once */
  fuzzConcurrency: number;
  fuzzSeed: number;
}

export type PhaseName = 'calm' | 'slow-body' | 'fake-upgrade' | 'fake-upgrade-large' | 'fuzz';

/** How the attack's connections ended: by first status (or how they ended without one), with how long they lasted. */
export interface AttackReport {
  connections: number;
  outcomes: Record<string, { count: number; totalSec: number }>;
  /** fuzz conversations the server sent nothing on and did not close within their deadline (test/fuzz/conversation.ts) */
  hung: number;
}

export interface Attack {
  /** ends every connection the attack still holds (recorded as "held") and reports */
  stop(): Promise<AttackReport>;
}

const SLOW_BODY_ADDRESS = '127.66.0.1';
const FAKE_UPGRADE_ADDRESS = '127.67.0.1';
const FUZZ_ADDRESS = '127.68.0.1';
/** a held connection that the server refuses at once is retried after this, not in a hot loop */
const RETRY_PAUSE_MS = 100;

class Tally {
  readonly report: AttackReport = { connections: 0, outcomes: {}, hung: 0 };

  add(key: string, seconds: number): void {
    const outcome = (this.report.outcomes[key] ??= { count: 0, totalSec: 0 });
    outcome.count++;
    outcome.totalSec += seconds;
    this.report.connections++;
  }
}

/**
 * Keeps `count` connections open, each driven by `drive` (which writes the request and decides
 * whether to read); a connection the server ends is replaced.
 */
function holdConnections(port: number, count: number, localAddress: string, drive: (socket: net.Socket) => () => void): Attack {
  const tally = new Tally();
  const open = new Set<net.Socket>();
  let stopped = false;
  const keepOne = async () => {
    while (!stopped) {
      const started = performance.now();
      let cleanup = () => {};
      const raw = await rawConversation(
        port,
        (socket) => {
          open.add(socket);
          socket.once('close', () => open.delete(socket));
          cleanup = drive(socket);
        },
        { localAddress, timeoutMs: 3_600_000 },
      ).catch((error: NodeJS.ErrnoException) => `error ${error.code ?? error.message}`);
      cleanup();
      const status = statusOf(raw);
      const answer = raw.startsWith('error ') ? raw : status ? String(status) : 'no answer';
      const key = stopped ? `${answer}, held to the end` : answer === 'no answer' ? 'closed' : answer;
      tally.add(key, (performance.now() - started) / 1000);
      if (!stopped && performance.now() - started < RETRY_PAUSE_MS) await sleep(RETRY_PAUSE_MS);
    }
  };
  const running = Promise.all(Array.from({ length: count }, keepOne));
  return {
    async stop() {
      stopped = true;
      for (const socket of open) socket.destroy();
      await running;
      return tally.report;
    },
  };
}

/**
 * git's fetch negotiation POST (the request the issue says must be buffered) with a 100,000-byte
 * body sent 1 byte a second. A POST to the repo URL itself is answered 405 by the reference
 * worker before its body arrives, so it holds nothing anywhere; this one makes the worker wait
 * for the body whenever it gets there.
 */
export function slowBodies(port: number, count: number): Attack {
  return holdConnections(port, count, SLOW_BODY_ADDRESS, (socket) => {
    socket.write('POST /demo-git/git-upload-pack HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 100000\r\n\r\n');
    const drip = setInterval(() => socket.writable && socket.write('0'), 1000);
    return () => clearInterval(drip);
  });
}

/** A WebSocket upgrade of a URL that answers 200 with a large file: the client reads the status line, then never again. */
export function fakeUpgrades(port: number, count: number, file: string): Attack {
  return holdConnections(port, count, FAKE_UPGRADE_ADDRESS, (socket) => {
    socket.write(`GET ${file} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    socket.once('data', () => socket.pause());
    return () => {};
  });
}

/** The seeded fuzzer's conversations (test/fuzz), `concurrency` at a time, from case 0 on, for every target alike. */
export function fuzz(port: number, concurrency: number, seed: number): Attack {
  const tally = new Tally();
  let stopped = false;
  const running = runConversations({
    port,
    seed,
    from: 0,
    count: 1_000_000,
    concurrency,
    localAddress: FUZZ_ADDRESS,
    shouldContinue: () => !stopped,
    onOutcome: (_, outcome) => {
      // The fuzz runner's proxy closes idle connections within 300 ms; here every target keeps an
      // answered keep-alive connection open as long as its defaults say (nginx 75 s), so only a
      // conversation with no answer at all by the deadline counts as hung.
      const answered = outcome.key !== 'closed';
      tally.add(outcome.hung && answered ? `${outcome.key}, kept open` : outcome.key, 0);
      if (outcome.hung && !answered) tally.report.hung++;
    },
  });
  return {
    async stop() {
      stopped = true; // conversations under way end within their own deadline
      await running;
      return tally.report;
    },
  };
}

export function startAttack(phase: PhaseName, port: number, settings: AttackSettings): Attack | undefined {
  switch (phase) {
    case 'calm':
      return undefined;
    case 'slow-body':
      return slowBodies(port, settings.slowBodies);
    case 'fake-upgrade':
      return fakeUpgrades(port, settings.fakeUpgrades, LARGE_FILE);
    case 'fake-upgrade-large':
      return fakeUpgrades(port, settings.fakeUpgrades, HUGE_FILE);
    case 'fuzz':
      return fuzz(port, settings.fuzzConcurrency, settings.fuzzSeed);
  }
}
