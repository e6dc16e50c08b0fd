// A small filesystem of a test's own, to fill up: a tmpfs mounted on a temp dir (root only; CI
// runs as root). A failed mount throws, so a full-disk test fails instead of passing untested.
// The mount is undone by unmount(), at process exit, or by the next test that finds it orphaned
// (its owner gone).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs';
import path from 'node:path';
import { cleanUpOrphans, ownedTempDir } from './owned-dirs.ts';

const PREFIX = 'switchyard-tmpfs-';
const FILL_FILE = '.fill';

function isMounted(dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === dir);
}

/** Unmounts (lazily, so a process still inside cannot keep it) and deletes the holder dir. */
function unmountAndRemove(holder: string): void {
  const mountPoint = path.join(holder, 'mnt');
  if (isMounted(mountPoint)) execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore', timeout: 15_000 });
  rmSync(holder, { recursive: true, force: true });
}

export class SmallTmpfs {
  private removed = false;
  private readonly onExit = () => this.unmount();

  private constructor(
    /** holds owner.pid and the mount point */
    private readonly holder: string,
    readonly sizeBytes: number,
  ) {
    process.once('exit', this.onExit);
  }

  /** Mounts a tmpfs of `sizeBytes`; throws (with mount's own words) when this machine does not allow it. */
  static mount(sizeBytes: number): SmallTmpfs {
    cleanUpOrphans(PREFIX, unmountAndRemove);
    const holder = ownedTempDir(PREFIX);
    const mountPoint = path.join(holder, 'mnt');
    mkdirSync(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', mountPoint], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    } catch (error) {
      rmSync(holder, { recursive: true, force: true });
      const failed = error as { stderr?: Buffer; message: string };
      throw new Error(`cannot mount a tmpfs for the full-disk test (it needs root): ${failed.stderr?.toString().trim() || failed.message}`);
    }
    return new SmallTmpfs(holder, sizeBytes);
  }

  /** The mounted filesystem's root. */
  get dir(): string {
    return path.join(this.holder, 'mnt');
  }

  freeBytes(): number {
    const stats = statfsSync(this.dir);
    return stats.bavail * stats.bsize;
  }

  /** Writes one file until at most `leaveBytes` are free (0: the filesystem is full, every write gets ENOSPC). */
  fill(leaveBytes = 0): void {
    const fd = openSync(path.join(this.dir, FILL_FILE), 'a');
    try {
      for (const chunk of [Buffer.alloc(1024 * 1024), Buffer.alloc(4096)]) {
        while (this.freeBytes() - leaveBytes >= chunk.length) {
          try {
            writeSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
            break; // someone else took the rest meanwhile
          }
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Deletes what fill() wrote: the space is free again. */
  unfill(): void {
    rmSync(path.join(this.dir, FILL_FILE), { force: true });
  }

  /** Unmounts and deletes everything on it; safe to call twice. */
  unmount(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    if (existsSync(this.holder)) unmountAndRemove(this.holder);
  }
}
