import { existsSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isValidRepoName } from '../names.ts';
import type { RepoKind } from '../vcs/types.ts';

export interface DiscoveredRepo {
  name: string;
  kind: RepoKind;
  description: string;
}

function kindOf(dir: string): RepoKind | undefined {
  if (existsSync(path.join(dir, '.hg', 'store'))) return 'hg';
  if (existsSync(path.join(dir, '.git', 'HEAD'))) return 'git';
  if (existsSync(path.join(dir, 'HEAD')) && existsSync(path.join(dir, 'objects'))) return 'git';
  return undefined;
}

async function descriptionOf(dir: string, kind: RepoKind): Promise<string> {
  const read = (file: string) => readFile(file, 'utf8').catch(() => '');
  if (kind === 'hg') {
    const hgrc = await read(path.join(dir, '.hg', 'hgrc'));
    return /^\s*description\s*=\s*(.*)$/m.exec(hgrc)?.[1]?.trim() ?? '';
  }
  const gitDir = existsSync(path.join(dir, '.git')) ? path.join(dir, '.git') : dir;
  const text = (await read(path.join(gitDir, 'description'))).trim();
  return text.startsWith('Unnamed repository') ? '' : text;
}

/** The repository called name directly under root (a real directory, not a symlink), if any. */
export async function discoverRepo(root: string, name: string): Promise<DiscoveredRepo | undefined> {
  if (!isValidRepoName(name)) return undefined;
  const dir = path.join(root, name);
  const info = await lstat(dir).catch(() => undefined);
  if (!info?.isDirectory()) return undefined;
  const kind = kindOf(dir);
  if (!kind) return undefined;
  return { name, kind, description: await descriptionOf(dir, kind) };
}

export async function discoverRepos(root: string): Promise<DiscoveredRepo[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const found = await Promise.all(names.sort().map((name) => discoverRepo(root, name)));
  return found.filter((repo): repo is DiscoveredRepo => repo !== undefined);
}
