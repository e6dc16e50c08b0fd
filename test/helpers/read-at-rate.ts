import type { Readable } from 'node:stream';

const TICK_MS = 50;

/**
 * Reads `stream` at about bytesPerSecond: paused, with small reads on a 50 ms clock, so TCP
 * backpressure holds the rest at its sender; each chunk read goes to onChunk. Returns the bytes
 * read so far and a stop function.
 */
export function readAtRate(stream: Readable, bytesPerSecond: number, onChunk?: (chunk: Buffer) => void): { readonly bytes: number; stop(): void } {
  let bytes = 0;
  stream.pause();
  const perTick = Math.floor((bytesPerSecond * TICK_MS) / 1000);
  const timer = setInterval(() => {
    let budget = perTick;
    while (budget > 0) {
      const chunk = stream.read(Math.min(budget, 16 * 1024)) as Buffer | null;
      if (!chunk) break;
      budget -= chunk.length;
      bytes += chunk.length;
      onChunk?.(chunk);
    }
  }, TICK_MS);
  return {
    get bytes() {
      return bytes;
    },
    stop: () => clearInterval(timer),
  };
}
