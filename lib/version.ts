import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './config.ts';

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The checkout's commit, read from .git directly (no git process); undefined outside a git checkout. */
export function gitCommit(root: string): string | undefined {
  const gitDir = path.join(root, '.git');
  const head = readText(path.join(gitDir, 'HEAD'));
  if (!head) return undefined;
  const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
  if (!ref) return /^[0-9a-f]{40}$/.test(head) ? head : undefined;
  const loose = readText(path.join(gitDir, ref));
  if (loose && /^[0-9a-f]{40}$/.test(loose)) return loose;
  const packed = readText(path.join(gitDir, 'packed-refs'))?.split('\n').find((line) => line.endsWith(` ${ref}`));
  return packed?.slice(0, 40);
}

/** package.json's version, plus `+<short commit>` when run from a git checkout: e.g. `0.1.0+05f8da0`. */
export function runningVersion(root = PROJECT_ROOT): string {
  let version = 'unknown';
  try {
    version = String(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version ?? version);
  } catch {
    // no readable package.json: the version stays unknown
  }
  const commit = gitCommit(root);
  return commit ? `${version}+${commit.slice(0, 7)}` : version;
}
