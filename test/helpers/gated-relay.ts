import net from 'node:net';
import { once } from 'node:events';

export interface GateOptions {
  /** a request (its head or body) matching this has its response held */
  holds: RegExp;
  /** how much of a held response goes through before the gate stops it (0: not even its headers) */
  afterBytes: number;
}

/**
 * A loopback TCP relay in front of a worker that holds chosen responses until open() is called:
 * once a request matching `holds` has passed on a connection, `afterBytes` of what the worker
 * sends back go through and the rest waits, the worker blocked on a full socket. A clone
 * generation stays in flight, mid-body or before its headers, for as long as a test needs,
 * without any timing. Once opened it passes everything, held bytes first; once cut, the held
 * connections are reset (their bytes never reach the proxy) and everything after passes.
 */
export class GatedRelay {
  port = 0;
  private server: net.Server | undefined;
  private opened = false;
  /** per held connection: let it go on, or reset it */
  private readonly held = new Map<net.Socket, { release(): void; reset(): void }>();
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly targetPort: number,
    private readonly options: GateOptions,
  ) {}

  /** connections whose response the gate is holding right now */
  get holding(): number {
    return this.held.size;
  }

  async start(): Promise<number> {
    const server = net.createServer((fromProxy) => this.relay(fromProxy));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Lets every held response go on, and everything after it. */
  open(): void {
    this.opened = true;
    for (const connection of this.held.values()) connection.release();
    this.held.clear();
  }

  /**
   * Resets the connections of held responses, dropping what they held: as if their worker had
   * died before those bytes reached the proxy. Everything after passes.
   */
  cut(): void {
    this.opened = true;
    for (const connection of this.held.values()) connection.reset();
    this.held.clear();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  private relay(fromProxy: net.Socket): void {
    const toWorker = net.connect(this.targetPort, '127.0.0.1');
    for (const socket of [fromProxy, toWorker]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {
        fromProxy.destroy();
        toWorker.destroy();
      });
    }
    let requestTail = '';
    /** bytes of the response still allowed through; undefined while no held request passed */
    let allowance: number | undefined;
    let held: Buffer | undefined;
    const release = () => {
      if (held) fromProxy.write(held);
      held = undefined;
      toWorker.resume();
    };
    const reset = () => {
      held = undefined;
      fromProxy.resetAndDestroy();
      toWorker.destroy();
    };

    fromProxy.on('data', (chunk: Buffer) => {
      if (!toWorker.write(chunk)) fromProxy.pause();
      if (this.opened || allowance !== undefined) return;
      requestTail = (requestTail + chunk.toString('latin1')).slice(-16 * 1024);
      if (this.options.holds.test(requestTail)) allowance = this.options.afterBytes;
    });
    toWorker.on('drain', () => fromProxy.resume());
    toWorker.on('data', (chunk: Buffer) => {
      let passing = chunk;
      if (!this.opened && allowance !== undefined) {
        passing = chunk.subarray(0, allowance);
        allowance -= passing.length;
        if (passing.length < chunk.length) {
          held = chunk.subarray(passing.length);
          toWorker.pause();
          this.held.set(fromProxy, { release, reset });
        }
      }
      if (passing.length > 0 && !fromProxy.write(passing)) toWorker.pause();
    });
    fromProxy.on('drain', () => {
      if (!held) toWorker.resume();
    });
    // A worker that dies sends what it had and a FIN: the proxy sees the response end early.
    toWorker.on('end', () => fromProxy.end());
    fromProxy.on('end', () => toWorker.end());
  }
}
