import type { FileHandle } from 'node:fs/promises';
import { openUnlinkedFile, prepareSpoolDir } from '../spool-store.ts';
import { Generation, type DiskBudget } from './generation.ts';

export interface CloneSpoolConfig {
  dir: string;
  /** a completed generation serves identical requests this long (0: none after it completes) */
  ttlSec: number;
  /** bytes of every generation's file together, those being written included */
  maxDiskBytes: number;
}

/**
 * After the disk fails a spool write, new keys go to a worker alone (bypass) this long, doubling
 * while it keeps failing: on a full disk only the clones being shared at that moment are cut,
 * not every clone after them.
 */
export const DISK_BACKOFF_MS = { first: 5000, max: 300_000 };

/** generations kept at once (each completed one holds an open file); past it the least recently used completed one goes */
export const MAX_ENTRIES = 256;

interface Entry {
  generation: Generation;
  /** may serve identical requests once complete (the request's key said so) */
  retain: boolean;
  /** when a completed generation stops serving (ms since the epoch) */
  expiresAt: number;
}

/**
 * The shared clone spool: one generation per key, being produced or completed within its TTL,
 * in least-recently-used order, under a disk budget that counts a generation's bytes from its
 * first one written until its file is closed (an evicted generation's readers go on from the
 * open file, and its bytes count until the last of them is done).
 */
export class CloneSpool implements DiskBudget {
  /** least recently used first (a use moves an entry to the end) */
  private readonly entries = new Map<string, Entry>();
  private diskBytes = 0;
  /** no new generation before this (ms since the epoch): the disk failed a write */
  private diskFailedUntil = 0;
  private diskBackoffMs = 0;

  constructor(private config: CloneSpoolConfig) {}

  /** A reload's TTL and budget (the directory stays); what is over a smaller budget goes as entries are used or expire. */
  reconfigure(config: CloneSpoolConfig): void {
    this.config = { ...config, dir: this.config.dir };
  }

  /** Creates the spool directory and removes whatever an earlier process left in it. */
  prepare(): void {
    prepareSpoolDir(this.config.dir);
  }

  /** disk bytes and entries now, and the followers waiting for a generation's head */
  get usage(): { diskBytes: number; entries: number; waiting: number } {
    let waiting = 0;
    for (const { generation } of this.entries.values()) waiting += generation.waiters;
    return { diskBytes: this.diskBytes, entries: this.entries.size, waiting };
  }

  /** The generation of `key` being produced, or completed and within its TTL; using it makes it the most recent. */
  find(key: string, now = Date.now()): Generation | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.generation.state === 'complete' && entry.expiresAt <= now) {
      this.drop(key, entry);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.generation;
  }

  /**
   * A new generation for `key` (which find did not find), or undefined when there is no room for one (the budget or the
   * entry count is taken by generations being produced): the request then goes alone.
   */
  start(key: string, retain: boolean, now = Date.now()): Generation | undefined {
    if (now < this.diskFailedUntil) return undefined;
    while (this.diskBytes >= this.config.maxDiskBytes || this.entries.size >= MAX_ENTRIES) {
      if (!this.evictOne()) return undefined;
    }
    const generation = new Generation(this, (settled) => this.settled(key, settled));
    this.entries.set(key, { generation, retain, expiresAt: Number.POSITIVE_INFINITY });
    return generation;
  }

  /** Completed generations past their TTL go (the proxy's scheduler runs this). */
  expire(now = Date.now()): void {
    for (const [key, entry] of this.entries) {
      if (entry.generation.state === 'complete' && entry.expiresAt <= now) this.drop(key, entry);
    }
  }

  reserve(bytes: number): boolean {
    while (this.diskBytes + bytes > this.config.maxDiskBytes) {
      if (!this.evictOne()) return false;
    }
    this.diskBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.diskBytes -= bytes;
  }

  diskFailed(now = Date.now()): void {
    if (now < this.diskFailedUntil) return; // generations already under way when it failed
    this.diskBackoffMs = Math.min(this.diskBackoffMs ? this.diskBackoffMs * 2 : DISK_BACKOFF_MS.first, DISK_BACKOFF_MS.max);
    this.diskFailedUntil = now + this.diskBackoffMs;
  }

  /** A new spool file, unlinked as soon as it is open: a crash leaves nothing behind. */
  openFile(): Promise<FileHandle> {
    return openUnlinkedFile(this.config.dir);
  }

  private settled(key: string, generation: Generation): void {
    const entry = this.entries.get(key);
    if (entry?.generation !== generation) return;
    if (generation.state === 'complete') this.diskBackoffMs = 0; // the disk took a whole answer again
    if (generation.state !== 'complete' || !entry.retain || this.config.ttlSec === 0) return this.drop(key, entry);
    entry.expiresAt = Date.now() + this.config.ttlSec * 1000;
  }

  /** The least recently used completed generation goes; false when there is none. */
  private evictOne(): boolean {
    for (const [key, entry] of this.entries) {
      if (entry.generation.state === 'complete') {
        this.drop(key, entry);
        return true;
      }
    }
    return false;
  }

  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    entry.generation.letGo();
  }
}
