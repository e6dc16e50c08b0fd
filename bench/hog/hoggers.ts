import type { Socket } from 'node:net';
import { SimulatedBrowser, subresources } from '../lib/browser.ts';

// Browsers that hog connections: each opens `perClient` keep-alive connections at once (the page
// and its subresources, repeated until every connection carried a request), then goes idle and
// keeps them open for as long as the server lets it.

export const hogAddress = (client: number) => `127.30.${client % 256}.${1 + Math.floor(client / 256)}`;

export interface Hog {
  /** connections that carried a successful request */
  opened: number;
  failed: number;
  /** of those, connections the server has not closed yet */
  open(): number;
  close(): void;
}

export async function openHog(origin: string, clients: number, perClient: number, page: string, batch = 20): Promise<Hog> {
  const browsers: SimulatedBrowser[] = [];
  const counted = new WeakSet<Socket>();
  let opened = 0;
  let failed = 0;
  let closed = 0;
  const probe = new SimulatedBrowser({ origin });
  const html = await probe.get(page);
  probe.close();
  const resources = subresources(html.body.toString('utf8'), new URL(origin));
  for (let first = 0; first < clients; first += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, clients - first) }, async (_, offset) => {
        const browser = new SimulatedBrowser({ origin, localAddress: hogAddress(first + offset), connections: perClient, timeoutMs: 30_000 });
        browsers.push(browser);
        browser.agent.on('free', (socket: Socket) => {
          if (counted.has(socket)) return;
          counted.add(socket);
          socket.once('close', () => closed++);
        });
        const requests = Array.from({ length: perClient }, (_, i) =>
          i === 0 ? browser.get(page, 'document') : browser.get(resources[(i - 1) % resources.length].path, resources[(i - 1) % resources.length].dest),
        );
        for (const result of await Promise.allSettled(requests)) {
          if (result.status === 'fulfilled' && result.value.status === 200) opened++;
          else failed++;
        }
      }),
    );
  }
  return { opened, failed, open: () => opened - closed, close: () => browsers.forEach((browser) => browser.close()) };
}
