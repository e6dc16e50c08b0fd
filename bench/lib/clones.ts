import { rm } from 'node:fs/promises';
import { spawnChild } from './processes.ts';

// git and hg clones as benchmark clients: the real command-line tools, bounded by a deadline.

export type VcsKind = 'git' | 'hg';

export interface CloneResult {
  kind: VcsKind;
  ok: boolean;
  seconds: number;
  error?: string;
}

const ENV = { GIT_TERMINAL_PROMPT: '0', HGPLAIN: '1', HGRCPATH: '' };

/**
 * Clones url into dir (bare / no working copy), killed after deadlineMs; the clone is deleted
 * afterwards. With nice, the client runs at the lowest CPU priority: it stands for a CI machine
 * elsewhere, so its index-pack/hg work should not take the server's cores on a shared benchmark box.
 */
export async function runClone(kind: VcsKind, url: string, dir: string, deadlineMs: number, options: { nice?: boolean; gitConfig?: string[] } = {}): Promise<CloneResult> {
  const nice = options.nice ?? true;
  const config = kind === 'git' ? (options.gitConfig ?? []).flatMap((setting) => ['-c', setting]) : [];
  const args = kind === 'git' ? [...config, 'clone', '--quiet', '--bare', url, dir] : ['clone', '--quiet', '--noupdate', url, dir];
  const started = performance.now();
  const child = nice ? spawnChild(`${kind} clone`, 'nice', ['-n', '19', kind, ...args], ENV) : spawnChild(`${kind} clone`, kind, args, ENV);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void child.stop();
  }, deadlineMs);
  await child.exited;
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  const code = child.process.exitCode;
  await rm(dir, { recursive: true, force: true });
  if (code === 0) return { kind, ok: true, seconds };
  const error = timedOut ? `not done after ${Math.round(deadlineMs / 1000)} s` : child.output().trim().split('\n').slice(-1)[0] || `exit ${code}`;
  return { kind, ok: false, seconds, error };
}
