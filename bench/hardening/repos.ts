import { existsSync } from 'node:fs';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { ChildProcesses } from '../../worker/children.ts';
import { createLargeGitRepo } from '../../worker/seed/large-repos.ts';
import { seededFixture } from '../../test/helpers/worker-harness.ts';
import { largeRepos } from '../fleet/repos.ts';

const HUGE_FILE_MB = 16;

/**
 * The fleet's repositories for the hardening scenario: big-git and big-hg (the pages the browsers
 * load, fleet/repos.ts); the demo repos, for demo-git's 4 MB data/large.txt (the issue's
 * fake-upgrade URL) and the fuzz cases' /demo-git and /demo-hg routes; and huge-git, one commit
 * of one 16 MB file, a response larger than what loopback socket buffers and the proxy's window
 * take in. Copied or made once into .bench-tmp/hardening-repos-<size>mb/repos (the worker lists
 * only real directories, no symlinks).
 */
export async function hardeningRepos(sizeMb: number, onGenerate?: () => void): Promise<string> {
  const cacheDir = path.join(PROJECT_ROOT, '.bench-tmp', `hardening-repos-${sizeMb}mb`);
  const repos = path.join(cacheDir, 'repos');
  if (existsSync(path.join(cacheDir, 'complete'))) return repos;
  const [large, demo] = await Promise.all([largeRepos(sizeMb, onGenerate), seededFixture()]);
  await rm(cacheDir, { recursive: true, force: true });
  await mkdir(repos, { recursive: true });
  for (const from of [large, demo]) {
    await cp(from, repos, { recursive: true, filter: (source) => !path.basename(source).startsWith('.seed-') });
  }
  await createLargeGitRepo(new ChildProcesses(), path.join(repos, 'huge-git'), HUGE_FILE_MB * 1024 * 1024, 1);
  await writeFile(path.join(cacheDir, 'complete'), new Date().toISOString());
  return repos;
}

/** The fake-upgrade target: a 4 MB file the reference worker streams. */
export const LARGE_FILE = '/demo-git/raw/main/data/large.txt';
/** The same with a 16 MB file. */
export const HUGE_FILE = '/huge-git/raw/main/blobs/part-0000.bin';
export const HUGE_FILE_LABEL = `${HUGE_FILE_MB} MB`;
