import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

// Small files whose content must be whole or absent: a crash or a full disk mid-write leaves the
// old file (or none), never a truncated one. The data is written to a temp file beside the target,
// flushed, and only then given the target's name; the directory is flushed so the name survives too.

function writeTemp(file: string, content: string, mode: number): string {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', mode);
  try {
    const bytes = Buffer.from(content);
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  return temp;
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `file` with `content` in one step: readers see the whole old or the whole new file. */
export function replaceFileSync(file: string, content: string, mode = 0o600): void {
  const temp = writeTemp(file, content, mode);
  try {
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(path.dirname(file));
}

/**
 * Creates `file` with its whole content, or returns false when it exists already: a file another
 * process created first is never overwritten (link(2) fails on an existing name, rename would not).
 */
export function createFileSync(file: string, content: string, mode = 0o600): boolean {
  const temp = writeTemp(file, content, mode);
  try {
    linkSync(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
  syncDirectory(path.dirname(file));
  return true;
}
