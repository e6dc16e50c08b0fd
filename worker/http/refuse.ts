import type { ServerResponse } from 'node:http';

/** 403 for any push; the reason phrase is what `hg push` shows, the body what git shows. */
export function refusePush(res: ServerResponse, vcs: 'git' | 'hg'): void {
  const message = `Push is not allowed on this server (read-only ${vcs} hosting)`;
  res.statusMessage = 'Push is not allowed';
  res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
  res.end(`${message}\n`);
}
