import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { capture, CommandError, killWhenClosed, type ChildProcesses } from '../children.ts';
import { gitEnv } from './env.ts';
import { fingerprintOf } from './fingerprint.ts';
import { sortEntries, type CommitSummary, type PathEntry, type RefSet, type RepoBackend, type TreeEntry } from './types.ts';

/** The git directory of a bare repository or of a work tree. */
export function gitDirOf(repoDir: string): string {
  const dotGit = path.join(repoDir, '.git');
  return existsSync(dotGit) ? dotGit : repoDir;
}

export class GitRepo implements RepoBackend {
  readonly kind = 'git';
  private readonly gitDir: string;

  constructor(
    readonly dir: string,
    private readonly children: ChildProcesses,
  ) {
    this.gitDir = gitDirOf(dir);
  }

  private git(args: string[], maxBytes?: number): Promise<Buffer> {
    return capture(this.children, 'git', [`--git-dir=${this.gitDir}`, ...args], { cwd: this.dir, env: gitEnv(), maxBytes });
  }

  fingerprint(): Promise<string> {
    return fingerprintOf([path.join(this.gitDir, 'HEAD'), path.join(this.gitDir, 'packed-refs')], [path.join(this.gitDir, 'refs')]);
  }

  async resolve(rev: string): Promise<string | undefined> {
    try {
      const out = await this.git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
      return out.toString('utf8').trim() || undefined;
    } catch (error) {
      if (error instanceof CommandError) return undefined;
      throw error;
    }
  }

  async defaultRevision(): Promise<string> {
    try {
      return (await this.git(['symbolic-ref', '--short', '-q', 'HEAD'])).toString('utf8').trim() || 'HEAD';
    } catch {
      return 'HEAD';
    }
  }

  async refs(): Promise<RefSet> {
    const out = await this.git([
      'for-each-ref',
      '--sort=-creatordate',
      '--format=%(refname)%00%(objectname)%00%(*objectname)',
      'refs/heads',
      'refs/tags',
    ]);
    const refs: RefSet = { branches: [], tags: [], bookmarks: [] };
    for (const line of out.toString('utf8').split('\n')) {
      if (!line) continue;
      const [refname, id, peeled] = line.split('\0');
      if (refname.startsWith('refs/heads/')) refs.branches.push({ name: refname.slice(11), id });
      else refs.tags.push({ name: refname.slice(10), id: peeled || id });
    }
    return refs;
  }

  async log(commitId: string, limit: number): Promise<CommitSummary[]> {
    const out = await this.git(['log', `-n${limit}`, '--format=%H%x00%an%x00%aI%x00%s%x1e', commitId, '--']);
    return out
      .toString('utf8')
      .split('\x1e')
      .map((record) => record.replace(/^\n/, ''))
      .filter(Boolean)
      .map((record) => {
        const [id, author, date, subject] = record.split('\0');
        return { id, author, date, subject };
      });
  }

  private async lsTree(commitId: string, pathspec?: string): Promise<TreeEntry[]> {
    const args = ['ls-tree', '-l', '-z', '--full-tree', commitId];
    if (pathspec !== undefined) args.push('--', pathspec);
    const out = await this.git(args);
    return out
      .toString('utf8')
      .split('\0')
      .filter(Boolean)
      .map((record) => {
        const tab = record.indexOf('\t');
        const [mode, type, objectId, size] = record.slice(0, tab).split(/ +/);
        const fullPath = record.slice(tab + 1);
        const entryType = type === 'tree' ? 'dir' : type === 'commit' ? 'submodule' : mode === '120000' ? 'link' : 'file';
        return {
          name: fullPath.slice(fullPath.lastIndexOf('/') + 1),
          path: fullPath,
          type: entryType,
          size: size === '-' ? undefined : Number(size),
          objectId,
        } satisfies TreeEntry;
      });
  }

  async entry(commitId: string, entryPath: string): Promise<PathEntry | undefined> {
    if (entryPath === '') {
      return { name: '', path: '', type: 'dir', children: sortEntries(await this.lsTree(commitId)) };
    }
    const [self] = (await this.lsTree(commitId, entryPath)).filter((entry) => entry.path === entryPath);
    if (!self) return undefined;
    if (self.type !== 'dir') return self;
    return { ...self, children: sortEntries(await this.lsTree(commitId, `${entryPath}/`)) };
  }

  openFile(_commitId: string, entry: TreeEntry): Readable {
    const child = this.children.spawn('git', [`--git-dir=${this.gitDir}`, 'cat-file', 'blob', entry.objectId!], {
      cwd: this.dir,
      env: gitEnv(),
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return killWhenClosed(child.stdout!, child);
  }
}
