import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from './worker-harness.ts';

// Real git and hg clients for tests of clones through the proxy: a clone, its verification
// against the repository the worker serves, and a new commit in that repository.

export type GitProtocol = 0 | 2;
export const CLONE_TIMEOUT_MS = 180_000;

export interface CloneExit {
  ok: boolean;
  /** the client's output when it failed */
  output: string;
}

/** `git clone --bare` with the given protocol version; rejects when git fails. */
export async function gitClone(url: string, dir: string, protocol: GitProtocol): Promise<void> {
  await run('git', ['-c', `protocol.version=${protocol}`, 'clone', '-q', '--bare', url, dir], { timeoutMs: CLONE_TIMEOUT_MS });
}

/** `hg clone -U` (no working copy); rejects when hg fails. */
export async function hgClone(url: string, dir: string): Promise<void> {
  await run('hg', ['clone', '-q', '-U', url, dir], { timeoutMs: CLONE_TIMEOUT_MS });
}

/** How a clone ended, for clones that are expected to fail. */
export async function cloneExit(clone: Promise<void>): Promise<CloneExit> {
  try {
    await clone;
    return { ok: true, output: '' };
  } catch (error) {
    const failed = error as { stderr?: string; message?: string };
    return { ok: false, output: failed.stderr || failed.message || String(error) };
  }
}

const gitRefs = async (gitDir: string) =>
  (await run('git', [`--git-dir=${gitDir}`, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads', 'refs/tags'])).stdout;

/** git fsck --full finds nothing, and HEAD, branches and tags are the source's. */
export async function verifyGitClone(clone: string, source: string): Promise<void> {
  await run('git', [`--git-dir=${clone}`, 'fsck', '--full', '--no-progress'], { timeoutMs: CLONE_TIMEOUT_MS });
  const head = async (gitDir: string) => (await run('git', [`--git-dir=${gitDir}`, 'rev-parse', 'HEAD'])).stdout.trim();
  assert.equal(await head(clone), await head(source), `HEAD of ${clone}`);
  assert.equal(await gitRefs(clone), await gitRefs(source), `branches and tags of ${clone}`);
}

const hgHeads = async (repo: string) => (await run('hg', ['--repository', repo, 'heads', '--template', '{node}\n'])).stdout.split('\n').sort().join('\n');

/** hg verify finds nothing, and the heads are the source's. */
export async function verifyHgClone(clone: string, source: string): Promise<void> {
  await run('hg', ['--repository', clone, 'verify', '-q'], { timeoutMs: CLONE_TIMEOUT_MS });
  assert.equal(await hgHeads(clone), await hgHeads(source), `heads of ${clone}`);
}

/** Commits to the bare repository the worker serves (through a scratch checkout); returns the new commit. */
export async function commitToGitRepo(bare: string, scratch: string): Promise<string> {
  await run('git', ['clone', '-q', bare, scratch]);
  await run('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.org', 'commit', '-q', '--allow-empty', '-m', 'a commit between two clones'], { cwd: scratch });
  await run('git', ['push', '-q', 'origin', 'HEAD'], { cwd: scratch });
  return (await run('git', ['rev-parse', 'HEAD'], { cwd: scratch })).stdout.trim();
}

/** Commits in the hg repository the worker serves; returns the new tip. */
export async function commitToHgRepo(repo: string): Promise<string> {
  await appendFile(path.join(repo, 'between-clones.txt'), `${Date.now()}\n`);
  await run('hg', ['--repository', repo, 'commit', '-q', '-A', '-u', 'T <t@example.org>', '-m', 'a commit between two clones']);
  return (await run('hg', ['--repository', repo, 'log', '-r', 'tip', '-T', '{node}'])).stdout;
}
