import os from 'node:os';
import path from 'node:path';
import { BROWSE_PAGES } from '../fleet/repos.ts';
import { browseUntil, summarizeLoads, type LoadSummary } from '../lib/browsing.ts';
import { runClone, type CloneResult, type VcsKind } from '../lib/clones.ts';

// Steady mixed load until told to stop: browsing users, human git/hg clone loops and bot clone
// loops (git, marked by the bot token header), all through the proxy.

export interface MixedLoadOptions {
  origin: string;
  users: number;
  thinkMs: number;
  humanCloners: number;
  botCloners: number;
  botToken: string;
  cloneDeadlineMs: number;
  maxSec: number;
}

export interface MixedLoadResult {
  browsing: LoadSummary;
  requests: number;
  clones: (CloneResult & { bot: boolean })[];
}

export interface MixedLoad {
  /** live counts for the progress display */
  counts(): { pages: number; pageErrors: number; clones: number; cloneFailures: number };
  /** stops starting new work and resolves once everything in flight has finished */
  stop(): Promise<MixedLoadResult>;
}

export function startMixedLoad(options: MixedLoadOptions): MixedLoad {
  let stopping = false;
  const until = Date.now() + options.maxSec * 1000;
  let pages = 0;
  let pageErrors = 0;
  const clones: (CloneResult & { bot: boolean })[] = [];
  const browsing = browseUntil({
    origin: options.origin,
    users: options.users,
    pages: BROWSE_PAGES,
    thinkMs: options.thinkMs,
    until,
    shouldStop: () => stopping,
    onLoad: (load) => {
      pages++;
      if (!load.ok) pageErrors++;
    },
  });
  const scratch = path.join(os.tmpdir(), `switchyard-bench-rolling-${process.pid}`);
  const cloneLoop = async (id: number, bot: boolean) => {
    for (let i = 0; !stopping && Date.now() < until; i++) {
      const kind: VcsKind = !bot && (id + i) % 2 === 1 ? 'hg' : 'git';
      const url = `${options.origin}/${kind === 'git' ? 'big-git' : 'big-hg'}`;
      const gitConfig = bot ? [`http.extraHeader=X-Switchyard-Bot-Token: ${options.botToken}`] : [];
      const result = await runClone(kind, url, path.join(scratch, `${bot ? 'bot' : 'human'}-${id}-${i}`), options.cloneDeadlineMs, { gitConfig });
      clones.push({ ...result, bot });
    }
  };
  const cloning = Promise.all([
    ...Array.from({ length: options.humanCloners }, (_, id) => cloneLoop(id, false)),
    ...Array.from({ length: options.botCloners }, (_, id) => cloneLoop(id, true)),
  ]);
  return {
    counts: () => ({ pages, pageErrors, clones: clones.length, cloneFailures: clones.filter((clone) => !clone.ok).length }),
    async stop() {
      stopping = true;
      const [loads] = await Promise.all([browsing, cloning]);
      return { browsing: summarizeLoads(loads), requests: loads.reduce((sum, load) => sum + load.requests, 0), clones };
    },
  };
}
