import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { capture, type ChildProcesses } from '../children.ts';
import { gitEnv, hgEnv } from '../vcs/env.ts';
import { FastImportWriter } from './fast-import.ts';

/** A bare git repository filled by `git fast-import` from the given history writer. */
export async function createGitRepo(
  children: ChildProcesses,
  dir: string,
  description: string,
  writeHistory: (out: FastImportWriter) => Promise<void>,
): Promise<void> {
  const env = gitEnv();
  await capture(children, 'git', ['init', '--quiet', '--bare', '--initial-branch=main', '--', dir], { env });
  // unpackLimit=0: small imports stay one pack (not loose objects) that upload-pack can send as is
  const importer = children.spawn('git', [`--git-dir=${dir}`, '-c', 'fastimport.unpackLimit=0', 'fast-import', '--quiet', '--done'], {
    env,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  importer.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve, reject) => {
    importer.once('error', reject);
    importer.once('close', resolve);
  });
  await writeHistory(new FastImportWriter(importer.stdin!));
  const code = await exited;
  if (code !== 0) throw new Error(`git fast-import failed (exit ${code}): ${stderr.slice(0, 1000)}`);
  await writeFile(path.join(dir, 'description'), `${description}\n`);
}

/** An hg repository with a working copy, converted from a git repository with hg's convert extension. */
export async function createHgRepoFromGit(
  children: ChildProcesses,
  gitDir: string,
  dir: string,
  description: string,
): Promise<void> {
  const env = hgEnv();
  await capture(children, 'hg', ['--config=extensions.convert=', 'convert', '--quiet', '--', gitDir, dir], { env, maxBytes: 1e9 });
  await writeFile(path.join(dir, '.hg', 'hgrc'), `[web]\ndescription = ${description}\n`);
  await capture(children, 'hg', [`--repository=${dir}`, 'update', '--quiet', 'tip'], { env });
}
