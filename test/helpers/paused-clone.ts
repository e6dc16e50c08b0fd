import { request, type ClientRequest, type IncomingMessage } from 'node:http';

export interface PausedClone {
  req: ClientRequest;
  res: IncomingMessage;
  /** reads the rest; resolves with the total body size once the response ends normally */
  finish(): Promise<number>;
}

export interface CloneSource {
  /** the repository's name in the URL */
  repo: string;
  /** the revision to fetch: a git commit id or an hg node */
  head: string;
}

function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}

/**
 * Starts a clone-sized response from the worker (or proxy) on 127.0.0.1:port, reads its first
 * chunk and then stops reading: with a repository far larger than socket buffers, the git/hg
 * child is then held mid-stream.
 */
export function startPausedClone(port: number, kind: 'git' | 'hg', source: CloneSource): Promise<PausedClone> {
  return new Promise((resolve, reject) => {
    const options =
      kind === 'git'
        ? {
            method: 'POST',
            path: `/${source.repo}/git-upload-pack`,
            headers: { 'content-type': 'application/x-git-upload-pack-request' },
          }
        : {
            method: 'GET',
            path: `/${source.repo}?cmd=getbundle&heads=${source.head}&common=${'0'.repeat(40)}`,
            headers: { accept: 'application/mercurial-0.1' },
          };
    const req = request({ host: '127.0.0.1', port, ...options }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      let size = 0;
      res.once('data', (chunk: Buffer) => {
        size += chunk.length;
        res.pause();
        resolve({
          req,
          res,
          finish: () =>
            new Promise((done, fail) => {
              res.on('data', (more: Buffer) => (size += more.length));
              res.once('end', () => (res.complete ? done(size) : fail(new Error('response cut short'))));
              res.once('error', fail);
              res.resume();
            }),
        });
      });
    });
    req.on('error', reject);
    req.end(kind === 'git' ? `${pktLine(`want ${source.head}\n`)}0000${pktLine('done\n')}` : undefined);
  });
}
