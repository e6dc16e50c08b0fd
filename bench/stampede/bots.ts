import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runClone, type CloneResult, type VcsKind } from '../lib/clones.ts';
import { announcedPort, spawnNodeScript } from '../lib/processes.ts';
import type { RelaySpec } from '../lib/throttle-relay.ts';

// The midnight CI bots: each clones big-git or big-hg through its own relay, which gives it its
// own source address in the bots' CIDR (127.20.<i>.1), the server's own Host header and, for the
// first `slow` bots, a throttled link.

export const BOT_CIDR = '127.20.0.0/16';
export const botAddress = (bot: number) => `127.20.${bot % 256}.${1 + Math.floor(bot / 256)}`;

export interface BotPlan {
  bots: number;
  slow: number;
  slowBytesPerSec: number;
  /** every hgEvery-th bot clones the hg repo, the rest git */
  hgEvery: number;
}

export interface BotResult extends CloneResult {
  slow: boolean;
}

const relaysScript = fileURLToPath(new URL('../targets/relays.ts', import.meta.url));

export const botKind = (plan: BotPlan, bot: number): VcsKind => (bot % plan.hgEvery === plan.hgEvery - 1 ? 'hg' : 'git');

/** Starts one relay per bot (in their own process) towards target; returns each bot's local port. */
export async function startBotRelays(plan: BotPlan, target: string): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const specs: RelaySpec[] = Array.from({ length: plan.bots }, (_, bot) => ({
    target,
    localAddress: botAddress(bot),
    bytesPerSec: bot < plan.slow ? plan.slowBytesPerSec : undefined,
    // every bot names the server alike, as CI machines cloning one URL do
    host: target,
  }));
  const child = spawnNodeScript('relays', relaysScript, [JSON.stringify(specs)]);
  let ports: number[] = [];
  const unsubscribe = child.onLine((line) => {
    if (line.startsWith('RELAYS ')) ports = JSON.parse(line.slice(7)) as number[];
  });
  await announcedPort(child);
  unsubscribe();
  return { ports, stop: () => child.stop() };
}

const scratch = path.join(os.tmpdir(), `switchyard-bench-stampede-${process.pid}`);

/** One clone of bot `bot` through its relay on `port`, bounded by deadlineMs. */
export async function botClone(plan: BotPlan, bot: number, port: number, deadlineMs: number): Promise<BotResult> {
  const kind = botKind(plan, bot);
  const repo = kind === 'git' ? 'big-git' : 'big-hg';
  return { ...(await runClone(kind, `http://127.0.0.1:${port}/${repo}`, path.join(scratch, `bot-${bot}`), deadlineMs)), slow: bot < plan.slow };
}

/** All bots clone at once; resolves when every clone has finished or hit the deadline. */
export async function stampede(plan: BotPlan, ports: number[], deadlineMs: number, onDone: (result: BotResult) => void): Promise<BotResult[]> {
  return Promise.all(
    ports.map(async (port, bot) => {
      const result = await botClone(plan, bot, port, deadlineMs);
      onDone(result);
      return result;
    }),
  );
}
