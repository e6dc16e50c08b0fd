import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { capture, type ChildProcesses } from '../children.ts';
import { hgEnv } from '../vcs/env.ts';
import { createGitRepo } from './create.ts';

// Repositories of incompressible content for streaming tests and the clone benchmark: the pack or
// bundle a clone sends is about as large as the content.

const AUTHOR = { name: 'Bench Bot', email: 'bench@example.org' };

export async function createLargeGitRepo(children: ChildProcesses, dir: string, totalBytes: number, commits: number): Promise<void> {
  const perCommit = Math.ceil(totalBytes / commits);
  await createGitRepo(children, dir, `${totalBytes} bytes of random content`, async (out) => {
    let parent: number | undefined;
    for (let i = 0; i < commits; i++) {
      parent = await out.commit({
        branch: 'main',
        author: AUTHOR,
        time: 1_700_000_000 + i * 60,
        message: `Add part ${i}\n`,
        parents: parent === undefined ? [] : [parent],
        changes: [{ path: `blobs/part-${String(i).padStart(4, '0')}.bin`, content: randomBytes(perCommit) }],
      });
    }
    await out.end();
  });
}

export async function createLargeHgRepo(children: ChildProcesses, dir: string, totalBytes: number, commits: number): Promise<void> {
  const perCommit = Math.ceil(totalBytes / commits);
  const env = hgEnv();
  await capture(children, 'hg', ['init', '--', dir], { env });
  await mkdir(path.join(dir, 'blobs'));
  for (let i = 0; i < commits; i++) {
    await writeFile(path.join(dir, 'blobs', `part-${String(i).padStart(4, '0')}.bin`), randomBytes(perCommit));
    await capture(children, 'hg', [`--repository=${dir}`, 'commit', '--quiet', '--addremove', `--user=${AUTHOR.name} <${AUTHOR.email}>`, `--message=Add part ${i}`], { env });
  }
}
