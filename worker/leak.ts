/**
 * worker.leakBytesPerRequest: keeps a filled buffer per app request forever, the way an unbounded
 * in-process cache does, so that memory-based recycling can be demonstrated and tested. Buffers
 * live outside the V8 heap and are written, so every byte counts in RSS.
 */
export class DeliberateLeak {
  private readonly retained: Buffer[] = [];
  private total = 0;

  constructor(private readonly bytesPerRequest: number) {}

  onRequest(): void {
    if (this.bytesPerRequest <= 0) return;
    this.retained.push(Buffer.alloc(this.bytesPerRequest, 0x5a));
    this.total += this.bytesPerRequest;
  }

  get retainedBytes(): number {
    return this.total;
  }
}
