import path from 'node:path';
import type { Readable } from 'node:stream';
import { capture, CommandError, killWhenClosed, type ChildProcesses } from '../children.ts';
import { hgEnv } from './env.ts';
import { fingerprintOf } from './fingerprint.ts';
import { sortEntries, type CommitSummary, type PathEntry, type RefSet, type RepoBackend, type TreeEntry } from './types.ts';

interface ManifestFile {
  path: string;
  size: number;
  flags: string;
}

// Revisions reach hg as quoted revset strings ('name'), which hg looks up as a single symbol, so
// "a-b" or "x::y" can never become a revset expression. isValidRevision() already excludes quotes.
function revsetSymbol(rev: string): string {
  if (rev.includes("'") || rev.includes('\\')) throw new Error(`unsafe revision ${JSON.stringify(rev)}`);
  return `'${rev}'`;
}

export class HgRepo implements RepoBackend {
  readonly kind = 'hg';
  /** manifests are immutable per commit id; the page cache above keeps rendered results */
  private lastManifest?: { commitId: string; files: ManifestFile[] };

  constructor(
    readonly dir: string,
    private readonly children: ChildProcesses,
  ) {}

  private hg(args: string[]): Promise<Buffer> {
    return capture(this.children, 'hg', [`--repository=${this.dir}`, ...args], { cwd: this.dir, env: hgEnv() });
  }

  fingerprint(): Promise<string> {
    const hgDir = path.join(this.dir, '.hg');
    return fingerprintOf(
      ['store/00changelog.i', 'store/00changelog.n', 'store/phaseroots', 'bookmarks', 'store/bookmarks'].map((file) =>
        path.join(hgDir, file),
      ),
    );
  }

  async resolve(rev: string): Promise<string | undefined> {
    try {
      const out = await this.hg(['log', `--rev=${revsetSymbol(rev)}`, '--limit=1', '--template={node}']);
      return out.toString('utf8').trim() || undefined;
    } catch (error) {
      if (error instanceof CommandError) return undefined;
      throw error;
    }
  }

  async defaultRevision(): Promise<string> {
    return 'tip';
  }

  async refs(): Promise<RefSet> {
    const template = "{node}\\0{branch}\\0{ifcontains(rev, revset('head() and not closed()'), 'head')}\\0{join(tags, '\\x01')}\\0{join(bookmarks, '\\x01')}\\n";
    const out = await this.hg(['log', '--rev=reverse(head() or tag() or bookmark())', `--template=${template}`]);
    const refs: RefSet = { branches: [], tags: [], bookmarks: [] };
    const seenBranches = new Set<string>();
    for (const line of out.toString('utf8').split('\n')) {
      if (!line) continue;
      const [id, branch, head, tags, bookmarks] = line.split('\0');
      if (head && !seenBranches.has(branch)) {
        seenBranches.add(branch);
        refs.branches.push({ name: branch, id });
      }
      for (const tag of tags.split('\x01')) if (tag && tag !== 'tip') refs.tags.push({ name: tag, id });
      for (const bookmark of bookmarks.split('\x01')) if (bookmark) refs.bookmarks.push({ name: bookmark, id });
    }
    return refs;
  }

  async log(commitId: string, limit: number): Promise<CommitSummary[]> {
    const out = await this.hg([
      'log',
      `--rev=reverse(::${revsetSymbol(commitId)})`,
      `--limit=${limit}`,
      '--template={node}\\0{author|person}\\0{date|rfc3339date}\\0{desc|firstline}\\n',
    ]);
    return out
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [id, author, date, subject] = line.split('\0');
        return { id, author, date, subject };
      });
  }

  private async manifest(commitId: string): Promise<ManifestFile[]> {
    if (this.lastManifest?.commitId === commitId) return this.lastManifest.files;
    let out: Buffer;
    try {
      out = await this.hg(['files', `--rev=${revsetSymbol(commitId)}`, '--template={size}\\0{flags}\\0{path}\\0']);
    } catch (error) {
      // "hg files" exits 1 when the revision has no files at all
      if (error instanceof CommandError && error.exitCode === 1) out = Buffer.alloc(0);
      else throw error;
    }
    const fields = out.toString('utf8').split('\0');
    const files: ManifestFile[] = [];
    for (let i = 0; i + 2 < fields.length; i += 3) files.push({ size: Number(fields[i]), flags: fields[i + 1], path: fields[i + 2] });
    this.lastManifest = { commitId, files };
    return files;
  }

  async entry(commitId: string, entryPath: string): Promise<PathEntry | undefined> {
    const files = await this.manifest(commitId);
    const file = files.find((candidate) => candidate.path === entryPath);
    if (file) return toEntry(file);
    const prefix = entryPath === '' ? '' : `${entryPath}/`;
    const children = new Map<string, TreeEntry>();
    for (const candidate of files) {
      if (!candidate.path.startsWith(prefix)) continue;
      const rest = candidate.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash === -1) children.set(rest, toEntry(candidate));
      else if (!children.has(rest.slice(0, slash))) {
        const name = rest.slice(0, slash);
        children.set(name, { name, path: prefix + name, type: 'dir' });
      }
    }
    if (children.size === 0 && entryPath !== '') return undefined;
    const name = entryPath.slice(entryPath.lastIndexOf('/') + 1);
    return { name, path: entryPath, type: 'dir', children: sortEntries([...children.values()]) };
  }

  openFile(commitId: string, entry: TreeEntry): Readable {
    const child = this.children.spawn(
      'hg',
      [`--repository=${this.dir}`, 'cat', `--rev=${revsetSymbol(commitId)}`, '--', `path:${entry.path}`],
      { cwd: this.dir, env: hgEnv(), stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return killWhenClosed(child.stdout!, child);
  }
}

function toEntry(file: ManifestFile): TreeEntry {
  return {
    name: file.path.slice(file.path.lastIndexOf('/') + 1),
    path: file.path,
    type: file.flags.includes('l') ? 'link' : 'file',
    size: file.size,
  };
}
