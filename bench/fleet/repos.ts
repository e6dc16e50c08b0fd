import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { ChildProcesses } from '../../worker/children.ts';
import { createLargeGitRepo, createLargeHgRepo } from '../../worker/seed/large-repos.ts';

/**
 * The large git and hg repositories (big-git, big-hg: `sizeMb` of random content in 20 commits),
 * generated once into .bench-tmp/clone-repos-<size>mb/repos, the same cache bench/clone uses.
 * Returns the repos directory.
 */
export async function largeRepos(sizeMb: number, onGenerate?: () => void): Promise<string> {
  const cacheDir = path.join(PROJECT_ROOT, '.bench-tmp', `clone-repos-${sizeMb}mb`);
  const repos = path.join(cacheDir, 'repos');
  if (existsSync(path.join(cacheDir, 'complete'))) return repos;
  onGenerate?.();
  await rm(cacheDir, { recursive: true, force: true });
  await mkdir(repos, { recursive: true });
  const children = new ChildProcesses();
  await createLargeGitRepo(children, path.join(repos, 'big-git'), sizeMb * 1024 * 1024, 20);
  await createLargeHgRepo(children, path.join(repos, 'big-hg'), sizeMb * 1024 * 1024, 20);
  await writeFile(path.join(cacheDir, 'complete'), new Date().toISOString());
  return repos;
}

/** The pages the simulated users browse (all rendered by the worker, cached after warm-up). */
export const BROWSE_PAGES = ['/', '/big-git', '/big-hg', '/big-git/tree/main/blobs', '/big-hg/tree/tip/blobs'];
