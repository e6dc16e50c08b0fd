import net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

// A loopback TCP relay for benchmark clients that cannot choose their source address or link
// speed (git, hg): it accepts on 127.0.0.1, connects to the target from `localAddress` (any of
// 127.0.0.0/8 on Linux, so a proxy sees distinct client IPs), optionally paces the
// server-to-client direction with a token bucket (a slow link) and gives the requests the Host
// header of the server they stand for.

export interface RelaySpec {
  /** host:port to forward to */
  target: string;
  /** source address of the outgoing connection, e.g. 127.20.3.1 */
  localAddress?: string;
  /** server-to-client rate limit, bytes per second (omitted: unlimited) */
  bytesPerSec?: number;
  /**
   * the Host header requests get instead of the relay's own address (clients of one server name
   * it alike; a proxy may tell requests apart by Host, e.g. clone sharing's key)
   */
  host?: string;
}

const SLICE = 16 * 1024;

/** Paces the bytes passing through at bytesPerSec with a burst of one slice. */
export class TokenBucket extends Transform {
  private tokens = SLICE;
  private last = performance.now();

  constructor(private readonly bytesPerSec: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    void this.pace(chunk).then(() => done(), done);
  }

  private async pace(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; offset += SLICE) {
      const slice = chunk.subarray(offset, offset + SLICE);
      const now = performance.now();
      this.tokens = Math.min(SLICE, this.tokens + ((now - this.last) * this.bytesPerSec) / 1000);
      this.last = now;
      if (this.tokens < slice.length) {
        const waitMs = ((slice.length - this.tokens) * 1000) / this.bytesPerSec;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
        this.tokens += (waitMs * this.bytesPerSec) / 1000;
        this.last = performance.now();
      }
      this.tokens -= slice.length;
      this.push(slice);
    }
  }
}

/** Rewrites `Host: <from>` request headers to `Host: <to>` in a client-to-server byte stream. */
export class HostRewrite extends Transform {
  private readonly header: RegExp;
  private readonly line: string;
  /** the start of a line that may yet become the header, held back until the next chunk */
  private carry = '';

  constructor(
    from: string,
    private readonly to: string,
  ) {
    super();
    this.line = `host: ${from}\r\n`;
    this.header = new RegExp(`(^|\n)host: *${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\r\n`, 'gi');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    // latin1 maps every byte to one character and back: bodies pass unchanged
    const text = (this.carry + chunk.toString('latin1')).replace(this.header, `$1Host: ${this.to}\r\n`);
    const tail = text.slice(text.lastIndexOf('\n') + 1);
    const partial = tail.length > 0 && tail.length < this.line.length && this.line.startsWith(tail.toLowerCase());
    this.carry = partial ? tail : '';
    done(null, Buffer.from(partial ? text.slice(0, text.length - tail.length) : text, 'latin1'));
  }

  override _flush(done: TransformCallback): void {
    done(null, Buffer.from(this.carry, 'latin1'));
  }
}

export interface Relay {
  port: number;
  close(): Promise<void>;
}

export async function startRelay(spec: RelaySpec): Promise<Relay> {
  const [host, port] = [spec.target.slice(0, spec.target.lastIndexOf(':')), Number(spec.target.slice(spec.target.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port, localAddress: spec.localAddress });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    if (spec.host) client.pipe(new HostRewrite(`127.0.0.1:${(server.address() as net.AddressInfo).port}`, spec.host)).pipe(upstream);
    else client.pipe(upstream);
    if (spec.bytesPerSec) upstream.pipe(new TokenBucket(spec.bytesPerSec)).pipe(client);
    else upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
