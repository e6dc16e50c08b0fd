import http from 'node:http';
import * as cheerio from 'cheerio';
import { sleep } from '../../test/helpers/http.ts';
import { newReport, outcomeOf, tally, timedGet, type Party } from './client.ts';

// The crawler: one address, an anonymous search engine's user agent, `ratePerSec` requests a
// second (at most MAX_IN_FLIGHT at once), each to a URL it has not asked for before on that
// target. Like a search engine it knows the site's URLs from earlier visits: they are found once
// per run, breadth first from the repository list over every same-origin link but static files and
// raw downloads (what a robots.txt would keep it from), on a worker of their own; so on each
// target it asks for pages that target's workers have not rendered yet (trees and files at every
// commit), at its own pace from the first second.

export const CRAWLER_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const HEADERS = { 'user-agent': CRAWLER_UA, accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
export const MAX_IN_FLIGHT = 10;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_HTML_BYTES = 4 * 1024 * 1024;

/** Same-origin links of a page, but static files and raw downloads. */
function links(html: string, origin: URL): string[] {
  const $ = cheerio.load(html);
  return $('a[href]')
    .map((_, element) => new URL($(element).attr('href') ?? '', origin))
    .get()
    .filter((url) => url.origin === origin.origin)
    .map((url) => url.pathname + url.search)
    .filter((path) => !path.startsWith('/_static/') && !path.includes('/raw/'));
}

/** Up to `count` distinct URLs of the site at origin, breadth first from "/" (fewer if the site has fewer). */
export async function discoverUrls(origin: URL, count: number): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const found = ['/'];
  const seen = new Set(found);
  try {
    for (let next = 0; next < found.length && found.length < count; next++) {
      const got = await timedGet(agent, origin, found[next], HEADERS, REQUEST_TIMEOUT_MS, KEEP_HTML_BYTES);
      for (const path of got.html ? links(got.html, origin) : []) {
        if (seen.has(path)) continue;
        seen.add(path);
        found.push(path);
      }
    }
  } finally {
    agent.destroy();
  }
  return found.slice(0, count);
}

/** The crawl of one target: the site's URLs in order, kept across its phases; once all were asked for it starts over (cached by then). */
export class CrawlOrder {
  private next = 0;

  constructor(private readonly urls: string[]) {}

  take(): string {
    return this.urls[this.next++ % this.urls.length];
  }
}

export function crawler(origin: URL, ratePerSec: number, localAddress: string, order: CrawlOrder): Party {
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT, localAddress });
  const report = newReport();
  const pending = new Set<Promise<void>>();
  let stopped = false;
  const visit = async (path: string) => {
    const got = await timedGet(agent, origin, path, HEADERS, REQUEST_TIMEOUT_MS);
    report.bytes += got.bytes;
    tally(report, stopped ? 'in flight at the end' : outcomeOf(got), got.seconds);
  };
  const pace = async () => {
    const started = performance.now();
    for (let tick = 1; !stopped; tick++) {
      await sleep(Math.max(0, started + (tick * 1000) / ratePerSec - performance.now()));
      // a tick with every slot busy is skipped: the rate is a ceiling
      if (stopped || pending.size >= MAX_IN_FLIGHT) continue;
      const visiting = visit(order.take()).finally(() => pending.delete(visiting));
      pending.add(visiting);
    }
  };
  const pacing = pace();
  return {
    async stop() {
      stopped = true;
      await pacing;
      agent.destroy();
      await Promise.all(pending);
      return report;
    },
  };
}
