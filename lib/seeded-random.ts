/** A small seeded PRNG (mulberry32): the demo history, and the fuzzer's cases, are the same on every machine. */
export class SeededRandom {
  constructor(private state: number) {}

  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    if (length < 4) {
      for (let i = 0; i < length; i++) out[i] = this.int(256);
      return out;
    }
    for (let i = 0; i < length; i += 4) out.writeUInt32LE((this.next() * 4294967296) >>> 0, Math.min(i, length - 4));
    return out;
  }
}
