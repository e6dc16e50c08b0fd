import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

// A ref update writes a lock file and renames it into place, which changes the directory's mtime,
// so the mtimes and sizes of a few files and the ref directories tell when anything moved.

async function statToken(file: string): Promise<string> {
  try {
    const info = await stat(file);
    return `${info.size}:${info.mtimeMs}`;
  } catch {
    return '-';
  }
}

async function directoryTokens(dir: string, out: string[]): Promise<void> {
  out.push(`${dir}=${await statToken(dir)}`);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.isDirectory()) await directoryTokens(path.join(dir, entry.name), out);
  }
}

export async function fingerprintOf(files: string[], refDirectories: string[] = []): Promise<string> {
  const tokens: string[] = [];
  for (const file of files) tokens.push(`${file}=${await statToken(file)}`);
  for (const dir of refDirectories) await directoryTokens(dir, tokens);
  return createHash('sha1').update(tokens.join('\n')).digest('hex').slice(0, 16);
}
