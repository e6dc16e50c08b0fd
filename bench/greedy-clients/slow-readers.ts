import net from 'node:net';
import { sleep } from '../../test/helpers/http.ts';
import { TokenBucket } from '../lib/throttle-relay.ts';
import { NAVIGATION_HEADERS, newReport, tally, type Party, type PartyReport } from './client.ts';

// The slow readers: each from an address of its own, one connection that asks for a large file
// and takes it at a trickle (odd readers, bytesPerSec) or not at all after the first chunk (even
// readers); a connection the server ends is replaced after a pause. Node cannot shrink a socket's
// receive buffer (the 4 KiB), so the file is one larger than what loopback's buffers and a
// proxy's window take in: a reader that does not read keeps the response, and with it whoever
// writes it, from finishing.

const HEADER_END = '\r\n\r\n';
/** before a reader opens its next connection */
const REOPEN_PAUSE_MS = 1000;

interface Reading {
  status: number;
  complete: boolean;
  bytes: number;
}

/** One connection: the request, then reading at `bytesPerSec` (0: only the first chunk) until the server closes it, the response is complete, or `stopping` fires. */
function readSlowly(port: number, localAddress: string, path: string, bytesPerSec: number, stopping: Promise<void>): Promise<Reading> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    const reading: Reading = { status: 0, complete: false, bytes: 0 };
    let expected = Number.POSITIVE_INFINITY;
    const took = (chunk: Buffer) => {
      reading.bytes += chunk.length;
      if (reading.bytes >= expected) {
        reading.complete = true;
        socket.destroy();
      }
    };
    socket.once('data', (first: Buffer) => {
      const text = first.toString('latin1');
      const headEnd = text.indexOf(HEADER_END);
      reading.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text.slice(0, headEnd));
      if (headEnd >= 0 && length) expected = headEnd + HEADER_END.length + Number(length[1]);
      took(first);
      if (bytesPerSec > 0) socket.pipe(new TokenBucket(bytesPerSec)).on('data', took);
      else socket.pause();
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve(reading));
    void stopping.then(() => socket.destroy());
    const headers = Object.entries(NAVIGATION_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers}\r\n`);
  });
}

export function slowReaders(port: number, addresses: string[], path: string, bytesPerSec: number): Party {
  const report: PartyReport = newReport();
  let stopped = false;
  let stop = () => {};
  const stopping = new Promise<void>((resolve) => (stop = resolve));
  const reader = async (address: string, index: number) => {
    const rate = index % 2 === 1 ? bytesPerSec : 0;
    while (!stopped) {
      const started = performance.now();
      const reading = await readSlowly(port, address, path, rate, stopping);
      report.bytes += reading.bytes;
      const answer = reading.status ? String(reading.status) : 'no answer';
      const key = stopped ? `${answer}, held to the end` : reading.complete ? `${answer}, complete` : `${answer}, cut`;
      tally(report, key, (performance.now() - started) / 1000);
      if (!stopped) await Promise.race([sleep(REOPEN_PAUSE_MS), stopping]);
    }
  };
  const running = Promise.all(addresses.map(reader));
  return {
    async stop() {
      stopped = true;
      stop();
      await running;
      return report;
    },
  };
}
