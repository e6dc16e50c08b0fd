// Temp dirs that a test process owns (its pid in owner.pid), for what it starts outside itself
// (a server, a mount): a process killed before its cleanup ran leaves them behind, and the next
// test that creates one of the same kind cleans them up.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProcessAlive } from '../../lib/process-alive.ts';

const OWNER_FILE = 'owner.pid';

/** A new temp dir named `<prefix>XXXXXX`, owned by this process. */
export function ownedTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

/** Runs `cleanUp` on every `<prefix>*` dir whose owner has gone (a failed clean-up is left for the next time). */
export function cleanUpOrphans(prefix: string, cleanUp: (dir: string) => void): void {
  for (const name of readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(prefix))) {
    const dir = path.join(os.tmpdir(), name);
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(dir, OWNER_FILE), 'utf8'));
    } catch {
      continue; // being created right now, or not ours
    }
    if (owner <= 0 || isProcessAlive(owner)) continue;
    try {
      cleanUp(dir);
    } catch {
      // another test got there first
    }
  }
}
