import http from 'node:http';
import { sleep } from '../../test/helpers/http.ts';
import { LARGE_FILE } from '../hardening/repos.ts';
import { NAVIGATION_HEADERS, newReport, outcomeOf, tally, timedGet, type Party } from './client.ts';

// The greedy client: one address, `parallel` keep-alive connections, each sending the next
// expensive request as soon as the previous one is answered, for as long as the phase lasts. It
// reads as fast as it can (a fast client, not a slow one) and sends a browser's navigation
// headers, so that it lands in the browsers' own lane: nothing in the request tells it apart,
// only how much it asks for.

/**
 * Uncached responses that cost a web worker the most of what the reference worker serves (hgweb's
 * HTML commands, the example, are leaving the worker): `hg cat` of a 4 MB file (about
 * 0.3 s of a worker and an hg process) and of a 400 KB one (0.2 s), and the 4 MB file from git
 * (0.07 s, 4 MB through the proxy).
 */
export const GREEDY_PATHS = ['/demo-hg/raw/tip/data/large.txt', '/big-hg/raw/tip/blobs/part-0019.bin', LARGE_FILE];
const REQUEST_TIMEOUT_MS = 60_000;
/** after a refusal (429, 503) or an error the connection waits this long, so a refused client is no hot loop */
const REFUSED_PAUSE_MS = 250;

export function greedyClient(origin: URL, parallel: number, localAddress: string): Party {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel, localAddress });
  const report = newReport();
  let stopped = false;
  const loop = async (lane: number) => {
    for (let next = lane; !stopped; next += parallel) {
      const got = await timedGet(agent, origin, GREEDY_PATHS[next % GREEDY_PATHS.length], NAVIGATION_HEADERS, REQUEST_TIMEOUT_MS);
      report.bytes += got.bytes;
      tally(report, stopped ? 'in flight at the end' : outcomeOf(got), got.seconds);
      if (!stopped && (got.error || got.status !== 200)) await sleep(REFUSED_PAUSE_MS);
    }
  };
  const running = Promise.all(Array.from({ length: parallel }, (_, lane) => loop(lane)));
  return {
    async stop() {
      stopped = true;
      agent.destroy();
      await running;
      return report;
    },
  };
}
