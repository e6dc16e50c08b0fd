import net from 'node:net';
import type { Child } from './processes.ts';

/** A free TCP port on 127.0.0.1 (for servers that cannot announce their own, like nginx). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Waits until 127.0.0.1:port accepts connections; fails early if the child that should listen
 * exits (without a child, e.g. a daemon that forked away, only the timeout bounds it).
 */
export async function waitForPort(port: number, child: Child | undefined, timeoutMs = 15_000): Promise<void> {
  let exited = false;
  void child?.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  const name = child?.name ?? `the server on ${port}`;
  while (!(await canConnect(port))) {
    if (exited) throw new Error(`${name} exited before listening on ${port}:\n${child?.output()}`);
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${port} within ${timeoutMs} ms${child ? `:\n${child.output()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
