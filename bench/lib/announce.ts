import net from 'node:net';

/**
 * For benchmark target processes: prints `LISTENING <port>` (read by announcedPort in
 * processes.ts) and exits cleanly after `close` (default: close the server) on SIGTERM/SIGINT or
 * when stdin closes, i.e. when the benchmark that started it is gone.
 */
export function announce(listening: net.Server | number, close?: () => Promise<unknown>): void {
  let port = listening;
  if (listening instanceof net.Server) {
    const address = listening.address();
    if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
    port = address.port;
    close ??= () => new Promise((resolve) => listening.close(resolve));
  }
  process.stdout.write(`LISTENING ${port}\n`);
  const stop = () => {
    setTimeout(() => process.exit(0), 2000).unref();
    void (close ?? (async () => {}))().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.once('close', stop).resume();
}
