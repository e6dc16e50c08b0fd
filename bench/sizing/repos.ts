import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { ChildProcesses } from '../../worker/children.ts';
import { seedDemoReposIfEmpty } from '../../worker/seed/seed.ts';
import { largeRepos } from '../fleet/repos.ts';

// The repositories the sizing bench clones: the seeded demo repos (what `npm start` serves), the
// large ones of the fleet benches, and copies of the demo repos named warm-* that each fresh proxy
// clones once before a measurement (so V8 has compiled the clone path, and clone sharing's spool
// holds nothing of the repo measured).

export const MEASURED_REPOS = ['demo-git', 'demo-hg', 'big-git', 'big-hg'] as const;
export type MeasuredRepo = (typeof MEASURED_REPOS)[number];
export const WARM_REPOS = { git: 'warm-git', hg: 'warm-hg' } as const;

/** Generated once into .bench-tmp/sizing-repos-<size>mb/repos; returns that directory. */
export async function sizingRepos(bigMb: number, onGenerate?: () => void): Promise<string> {
  const cacheDir = path.join(PROJECT_ROOT, '.bench-tmp', `sizing-repos-${bigMb}mb`);
  const repos = path.join(cacheDir, 'repos');
  if (existsSync(path.join(cacheDir, 'complete'))) return repos;
  const big = await largeRepos(bigMb, onGenerate);
  onGenerate?.();
  await rm(cacheDir, { recursive: true, force: true });
  await seedDemoReposIfEmpty(repos, new ChildProcesses(), pino({ level: 'silent' }));
  await cp(path.join(repos, 'demo-git'), path.join(repos, WARM_REPOS.git), { recursive: true });
  await cp(path.join(repos, 'demo-hg'), path.join(repos, WARM_REPOS.hg), { recursive: true });
  for (const name of ['big-git', 'big-hg']) await cp(path.join(big, name), path.join(repos, name), { recursive: true });
  await mkdir(cacheDir, { recursive: true });
  await writeFile(path.join(cacheDir, 'complete'), new Date().toISOString());
  return repos;
}

export const kindOf = (repo: string) => (repo.endsWith('-hg') ? 'hg' : 'git') as 'git' | 'hg';
