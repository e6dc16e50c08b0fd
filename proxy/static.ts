import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import send from 'send';

// Static files served by the proxy itself. `send` does the HTTP side (conditional GET, ranges,
// content types, HEAD, streaming); this module decides which file, if any, a URL may name.

export interface StaticOptions {
  /** URL prefix, starting and ending with '/' */
  prefix: string;
  /** directory the prefix maps to */
  root: string;
  maxAgeSec: number;
}

/** A file to serve, as a path below the real root (symlinks resolved), or why not. */
type Resolution = { realRoot: string; fileInRoot: string } | { status: 404 };

function respondError(res: http.ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const body = `${status} ${http.STATUS_CODES[status] ?? 'Error'}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/**
 * The URL path below the prefix, decoded once, checked segment by segment. Anything that could
 * climb out of the root or hide a name (dot segments, backslashes, NULs, undecodable escapes) is a
 * bad request; dotfiles are simply not there.
 */
function relativePathOf(url: string, prefix: string): { relative: string } | { status: 400 | 404 } {
  const encodedPath = url.split(/[?#]/, 1)[0];
  if (!encodedPath.startsWith(prefix)) return { status: 404 };
  let relative: string;
  try {
    relative = decodeURIComponent(encodedPath.slice(prefix.length));
  } catch {
    return { status: 400 };
  }
  if (relative.includes('\0') || relative.includes('\\')) return { status: 400 };
  const segments = relative.split('/');
  if (segments.some((segment) => segment === '.' || segment === '..')) return { status: 400 };
  if (segments.some((segment) => segment.startsWith('.'))) return { status: 404 };
  if (segments.every((segment) => segment === '')) return { status: 404 };
  return { relative };
}

export function createStaticHandler(opts: StaticOptions): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const root = path.resolve(opts.root);
  let realRoot: Promise<string> | undefined;
  // Cached once it resolves; retried on the next request if the root does not exist yet.
  const resolveRoot = () => {
    realRoot ??= fs.realpath(root).catch((error: unknown) => {
      realRoot = undefined;
      throw error;
    });
    return realRoot;
  };

  /** The real file to serve: it must exist, be a regular file, and really live under the root. */
  async function resolveFile(relative: string): Promise<Resolution> {
    let realFile: string;
    let rootPath: string;
    try {
      rootPath = await resolveRoot();
      realFile = await fs.realpath(path.join(root, relative));
    } catch {
      return { status: 404 };
    }
    const fileInRoot = path.relative(rootPath, realFile);
    // Catches a symlink leading out of the root ('..', or absolute across Windows drives), the root
    // itself, and a symlink inside the root pointing at a dotfile (.env, .git/config).
    if (fileInRoot === '' || path.isAbsolute(fileInRoot) || fileInRoot.split(path.sep).some((s) => s.startsWith('.'))) {
      return { status: 404 };
    }
    const stat = await fs.stat(realFile).catch(() => undefined);
    return stat?.isFile() ? { realRoot: rootPath, fileInRoot } : { status: 404 };
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return respondError(res, 405, { allow: 'GET, HEAD' });
    }
    const requested = relativePathOf(req.url ?? '', opts.prefix);
    if ('status' in requested) return respondError(res, requested.status);
    const resolved = await resolveFile(requested.relative);
    if ('status' in resolved) return respondError(res, resolved.status);

    // send is given the resolved file, so what it opens is what was checked (and it repeats its
    // own traversal and dotfile checks on top).
    const urlPath = resolved.fileInRoot.split(path.sep).map(encodeURIComponent).join('/');
    send(req, `/${urlPath}`, {
      root: resolved.realRoot,
      index: false,
      dotfiles: 'ignore',
      maxAge: opts.maxAgeSec * 1000,
    })
      .on('error', (error: { status?: number; headers?: Record<string, string> }) => {
        respondError(res, error.status ?? 500, error.headers);
      })
      .on('directory', () => respondError(res, 404))
      .pipe(res);
  }

  return (req, res) => {
    serve(req, res).catch(() => respondError(res, 500));
  };
}
