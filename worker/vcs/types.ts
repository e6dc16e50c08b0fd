import type { Readable } from 'node:stream';

export type RepoKind = 'git' | 'hg';

export interface RefInfo {
  name: string;
  id: string;
}

export interface RefSet {
  branches: RefInfo[];
  tags: RefInfo[];
  /** hg only */
  bookmarks: RefInfo[];
}

export interface CommitSummary {
  id: string;
  author: string;
  /** ISO 8601 */
  date: string;
  subject: string;
}

export type EntryType = 'file' | 'dir' | 'link' | 'submodule';

export interface TreeEntry {
  name: string;
  /** full path from the repository root */
  path: string;
  type: EntryType;
  size?: number;
  /** git blob id; hg reads files by path */
  objectId?: string;
}

export interface PathEntry extends TreeEntry {
  /** for directories, sorted: directories first, then by name */
  children?: TreeEntry[];
}

export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

/** Read-only access to one repository; every method works on resolved commit ids. */
export interface RepoBackend {
  readonly kind: RepoKind;
  /** cheap (filesystem stat) token that changes whenever a ref changes */
  fingerprint(): Promise<string>;
  /** the full commit id of a branch, tag, bookmark or (abbreviated) id; undefined when unknown */
  resolve(rev: string): Promise<string | undefined>;
  /** what a summary page shows when no revision is asked for */
  defaultRevision(): Promise<string>;
  refs(): Promise<RefSet>;
  log(commitId: string, limit: number): Promise<CommitSummary[]>;
  /** the file or directory at path ("" is the root), undefined when there is none */
  entry(commitId: string, path: string): Promise<PathEntry | undefined>;
  /** the content of a file entry returned by entry() */
  openFile(commitId: string, entry: TreeEntry): Readable;
}

export function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return entries.sort((a, b) => {
    const aDir = a.type === 'dir' ? 0 : 1;
    const bDir = b.type === 'dir' ? 0 : 1;
    return aDir - bDir || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  });
}
