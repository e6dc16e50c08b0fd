import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../lib/log.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';
import type { ChildProcesses } from '../children.ts';
import { createGitRepo, createHgRepoFromGit } from './create.ts';
import { writeDemoHistory } from './demo-history.ts';

// Several workers may start at once on the same repos directory: one takes the lock directory and
// seeds into a temporary directory, then renames the finished repositories into place; the others
// wait for the lock to go. Hidden names (".seed-*") are never valid repo names, so a crash leaves
// nothing that looks like a repository.

const LOCK = '.seed-lock';
const TEMP_PREFIX = '.seed-tmp-';
const WAIT_LIMIT_MS = 180_000;

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function isEmpty(root: string): Promise<boolean> {
  const entries = await readdir(root);
  return entries.every((name) => name.startsWith('.seed-'));
}

async function tryLock(lockDir: string): Promise<boolean> {
  try {
    await mkdir(lockDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number(await readFile(path.join(lockDir, 'pid'), 'utf8').catch(() => ''));
    const age = Date.now() - (await stat(lockDir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    if ((holder && !isProcessAlive(holder)) || (!holder && age > 10_000)) {
      await rm(lockDir, { recursive: true, force: true });
      return tryLock(lockDir);
    }
    return false;
  }
  try {
    await writeFile(path.join(lockDir, 'pid'), String(process.pid));
  } catch (error) {
    // a full disk: no lock without its owner left behind for the next start to wait on
    await rm(lockDir, { recursive: true, force: true });
    throw error;
  }
  return true;
}

/** Seeds demo-git and demo-hg when the repos directory is missing or empty; returns whether it did. */
export async function seedDemoReposIfEmpty(root: string, children: ChildProcesses, log: Logger): Promise<boolean> {
  await mkdir(root, { recursive: true });
  const lockDir = path.join(root, LOCK);
  // Repositories there and nobody seeding: nothing to write. A worker must start on a full disk
  // (the lock's pid file made every start there fail with ENOSPC, a crash loop until space was freed).
  if (!(await isEmpty(root)) && !(await exists(lockDir))) return false;
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!(await tryLock(lockDir))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`);
    await sleep(200);
  }
  try {
    if (!(await isEmpty(root))) return false;
    for (const name of await readdir(root)) {
      if (name.startsWith(TEMP_PREFIX)) await rm(path.join(root, name), { recursive: true, force: true });
    }
    const started = Date.now();
    log.info({ root }, 'seeding demo repositories');
    const temp = await mkdtemp(path.join(root, TEMP_PREFIX));
    const gitDir = path.join(temp, 'demo-git');
    const hgDir = path.join(temp, 'demo-hg');
    await createGitRepo(children, gitDir, 'Demo git repository seeded by Switchyard', writeDemoHistory);
    await createHgRepoFromGit(children, gitDir, hgDir, 'Demo Mercurial repository seeded by Switchyard');
    await rename(gitDir, path.join(root, 'demo-git'));
    await rename(hgDir, path.join(root, 'demo-hg'));
    await rm(temp, { recursive: true, force: true });
    log.info({ root, ms: Date.now() - started }, 'seeded demo repositories');
    return true;
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
