// Validation of everything from a URL that ends up in a file path or a git/hg command line.
// Anything that fails is refused before it reaches the filesystem or a child process.

const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REVISION = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function isValidRepoName(name: string): boolean {
  return name.length <= 100 && REPO_NAME.test(name) && !name.includes('..') && !name.endsWith('.lock');
}

/** A branch, tag, bookmark or commit id as it may appear in a URL; never starts with "-". */
export function isValidRevision(rev: string): boolean {
  return rev.length <= 200 && REVISION.test(rev) && !rev.includes('..') && !rev.endsWith('.lock');
}

/**
 * Normalises a path inside a repository ("a/b/c", no leading or trailing slash, "" for the root).
 * Returns undefined for traversal, empty segments, control characters or absurd lengths.
 */
export function normaliseRepoPath(path: string): string | undefined {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  if (trimmed.length > 4096 || CONTROL_CHARS.test(trimmed)) return undefined;
  const segments = trimmed.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || segment === '.git' || segment === '.hg') return undefined;
  }
  return segments.join('/');
}

/** "a/b c/d" -> "a/b%20c/d": each segment encoded for use in a link. */
export function encodePathForUrl(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
