import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Creates a spool directory and removes whatever an earlier process left in it. */
export function prepareSpoolDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dir)) rmSync(path.join(dir, name), { force: true, recursive: true });
}

let fileCounter = 0;

/** A new temp file in `dir`, unlinked as soon as it is open: a crash leaves nothing behind. */
export async function openUnlinkedFile(dir: string): Promise<FileHandle> {
  const file = path.join(dir, `${process.pid}-${++fileCounter}-${Math.random().toString(36).slice(2)}`);
  const handle = await open(file, 'wx+', 0o600);
  await unlink(file).catch(() => {});
  return handle;
}

/** The budgets a spool store keeps. */
export interface SpoolBudget {
  /** temp-file directory; emptied at start */
  spoolDir?: string;
  /** bytes (memory and disk) held for one client at once */
  perClientBytes: number;
  memoryTotalBytes: number;
  spoolTotalBytes: number;
}

/**
 * Memory and disk shared by every buffered request body (or spooled response), and the temp-file
 * directory. Each file is unlinked as soon as it is open, so a crash leaves nothing behind; the
 * directory is still emptied at start, for files caught between the two.
 */
export class SpoolStore<C extends SpoolBudget = SpoolBudget> {
  private memoryInUse = 0;
  private diskInUse = 0;
  /** bytes held per client (memory and disk), so that no one client takes the shared budgets; an entry lives while it is above 0 */
  private readonly byClient = new Map<string, number>();

  constructor(private budget: C) {}

  get config(): C {
    return this.budget;
  }

  /** A reload's budgets (the directory stays): what is held stays held, and new reservations meet the new limits. */
  resize(budget: C): void {
    this.budget = { ...budget, spoolDir: this.budget.spoolDir };
  }

  /** Creates the spool directory and removes whatever an earlier process left in it. */
  prepare(): void {
    prepareSpoolDir(this.config.spoolDir!);
  }

  get usage(): { memoryBytes: number; diskBytes: number; clients: number } {
    return { memoryBytes: this.memoryInUse, diskBytes: this.diskInUse, clients: this.byClient.size };
  }

  /** false when the client is at its share (perClientBytes); the caller refuses the body */
  reserveForClient(client: string, bytes: number): boolean {
    const held = this.byClient.get(client) ?? 0;
    if (held + bytes > this.config.perClientBytes) return false;
    this.byClient.set(client, held + bytes);
    return true;
  }

  releaseForClient(client: string, bytes: number): void {
    const held = (this.byClient.get(client) ?? 0) - bytes;
    if (held > 0) this.byClient.set(client, held);
    else this.byClient.delete(client);
  }

  reserveMemory(bytes: number): boolean {
    if (this.memoryInUse + bytes > this.config.memoryTotalBytes) return false;
    this.memoryInUse += bytes;
    return true;
  }

  releaseMemory(bytes: number): void {
    this.memoryInUse -= bytes;
  }

  reserveDisk(bytes: number): boolean {
    if (this.diskInUse + bytes > this.config.spoolTotalBytes) return false;
    this.diskInUse += bytes;
    return true;
  }

  releaseDisk(bytes: number): void {
    this.diskInUse -= bytes;
  }

  openTempFile(): Promise<FileHandle> {
    return openUnlinkedFile(this.config.spoolDir!);
  }
}

