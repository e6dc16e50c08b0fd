import { LRUCache } from 'lru-cache';
import type { ContentCache } from './types.ts';

// Per entry: the bytes, the key (UTF-16 in V8) and a rough allowance for the LRU's bookkeeping.
const ENTRY_OVERHEAD = 96;

/** An LRU bounded by bytes; maxBytes 0 disables it. */
export class MemoryCache implements ContentCache {
  private readonly lru?: LRUCache<string, Buffer>;

  constructor(maxBytes: number) {
    if (maxBytes > 0) {
      this.lru = new LRUCache<string, Buffer>({
        maxSize: maxBytes,
        sizeCalculation: (value, key) => value.length + key.length * 2 + ENTRY_OVERHEAD,
      });
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.lru?.get(key);
  }

  async set(key: string, value: Buffer): Promise<void> {
    // an entry larger than the whole bound is simply not kept
    this.lru?.set(key, value);
  }

  get localBytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  async close(): Promise<void> {
    this.lru?.clear();
  }
}
