import type { PartyReport } from './client.ts';
import { crawler, type CrawlOrder } from './crawler.ts';
import { greedyClient } from './greedy.ts';
import { slowReaders } from './slow-readers.ts';

// Who shares the fleet with the browsers in each phase, and from which address. Every party has
// addresses of its own on loopback (Linux answers for all of 127.0.0.0/8 on lo and lets a socket
// bind any of them), none of them the proxy's trusted 127.0.0.1, so a proxy that shares per
// client sees each party, and each browser, as a client apart.

export type PhaseName = 'calm' | 'greedy' | 'slow-readers' | 'crawler' | 'together';
export const PHASES: readonly PhaseName[] = ['calm', 'greedy', 'slow-readers', 'crawler', 'together'];

/** one address per simulated browser: 127.0.1.1 ... 127.0.1.254 */
export const MAX_USERS = 254;
export const browserAddress = (user: number) => `127.0.1.${1 + user}`;
export const GREEDY_ADDRESS = '127.0.2.1';
/** one address per slow reader: 127.0.3.1 ... */
export const slowReaderAddress = (reader: number) => `127.0.3.${1 + reader}`;
export const CRAWLER_ADDRESS = '127.0.4.1';

export interface PartySettings {
  /** the greedy client's requests at once */
  greedyParallel: number;
  slowReaders: number;
  /** the reading half of the slow readers' pace */
  slowReadBytesPerSec: number;
  /** what the slow readers ask for */
  slowReadPath: string;
  crawlerRatePerSec: number;
}

export interface PartyReports {
  greedy?: PartyReport;
  slow?: PartyReport;
  crawler?: PartyReport;
}

export interface Parties {
  stop(): Promise<PartyReports>;
}

export const joins = (phase: PhaseName, party: PhaseName) => phase === party || phase === 'together';

/** Starts the parties of `phase` (none in calm) against origin. */
export function startParties(phase: PhaseName, origin: URL, settings: PartySettings, crawl: CrawlOrder): Parties {
  const greedy = joins(phase, 'greedy') ? greedyClient(origin, settings.greedyParallel, GREEDY_ADDRESS) : undefined;
  const addresses = Array.from({ length: settings.slowReaders }, (_, reader) => slowReaderAddress(reader));
  const slow = joins(phase, 'slow-readers') ? slowReaders(Number(origin.port), addresses, settings.slowReadPath, settings.slowReadBytesPerSec) : undefined;
  const crawling = joins(phase, 'crawler') ? crawler(origin, settings.crawlerRatePerSec, CRAWLER_ADDRESS, crawl) : undefined;
  return {
    async stop() {
      const [greedyReport, slowReport, crawlerReport] = await Promise.all([greedy?.stop(), slow?.stop(), crawling?.stop()]);
      return { greedy: greedyReport, slow: slowReport, crawler: crawlerReport };
    },
  };
}
