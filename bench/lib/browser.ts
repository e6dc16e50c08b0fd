import http from 'node:http';
import * as cheerio from 'cheerio';

// A simulated browser: a page is fetched, its subresources (stylesheets, scripts, icons, images)
// are found with cheerio and fetched over up to `connections` parallel keep-alive connections
// (6 per origin, as browsers do), optionally from a chosen loopback source address.

export const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';

export interface BrowserOptions {
  /** origin, e.g. http://127.0.0.1:8080 */
  origin: string;
  localAddress?: string;
  connections?: number;
  /** a request without a complete response by then is an error (the user gives up) */
  timeoutMs?: number;
}

export interface Fetched {
  status: number;
  body: Buffer;
}

export interface PageLoad {
  ok: boolean;
  /** page and all subresources, ms */
  totalMs: number;
  /** the HTML document alone, ms */
  documentMs: number;
  requests: number;
  error?: string;
}

const DEST = { document: 'text/html,application/xhtml+xml,application/xhtml+xml;q=0.9,*/*;q=0.8', style: 'text/css,*/*;q=0.1', script: '*/*', image: 'image/avif,image/webp,image/svg+xml,image/*,*/*;q=0.8' };
type Dest = keyof typeof DEST;

export class SimulatedBrowser {
  readonly agent: http.Agent;
  private readonly url: URL;
  private readonly timeoutMs: number;

  constructor(private readonly options: BrowserOptions) {
    this.url = new URL(options.origin);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.connections ?? 6, localAddress: options.localAddress });
  }

  /**
   * One GET with browser headers; rejects on a network error or the timeout. Like a browser, it
   * retries once when a reused keep-alive connection turns out to have been closed by the server
   * before any response (the idle-timeout race every keep-alive client meets), on a new
   * connection: the other idle ones went idle at the same time and are as suspect (Chrome checks an
   * idle socket for a FIN before reusing it; Node's agent only learns of it from its event loop,
   * which a busy load generator runs late).
   */
  async get(path: string, dest: Dest = 'document'): Promise<Fetched> {
    try {
      return await this.getOnce(path, dest);
    } catch (error) {
      if (!(error as { reusedSocket?: boolean }).reusedSocket) throw error;
      for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      return this.getOnce(path, dest);
    }
  }

  private getOnce(path: string, dest: Dest): Promise<Fetched> {
    return new Promise((resolve, reject) => {
      let responded = false;
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path,
          agent: this.agent,
          headers: {
            'user-agent': BROWSER_UA,
            accept: DEST[dest],
            'accept-language': 'en-US,en;q=0.9',
            'sec-fetch-dest': dest,
            'sec-fetch-mode': dest === 'document' ? 'navigate' : 'no-cors',
            'sec-fetch-site': dest === 'document' ? 'none' : 'same-origin',
          },
        },
        (res) => {
          responded = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.once('error', reject);
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`timeout after ${this.timeoutMs} ms`)));
      req.once('error', (error: NodeJS.ErrnoException) => {
        const stale = !responded && req.reusedSocket && (error.code === 'ECONNRESET' || error.message === 'socket hang up');
        reject(Object.assign(error, { reusedSocket: stale }));
      });
      req.end();
    });
  }

  /** Loads a page the way a browser does; never rejects. */
  async loadPage(path: string): Promise<PageLoad> {
    const started = performance.now();
    let documentMs = Number.NaN;
    let requests = 1;
    try {
      const document = await this.get(path, 'document');
      documentMs = performance.now() - started;
      if (document.status !== 200) throw new Error(`HTTP ${document.status} for ${path}`);
      const resources = subresources(document.body.toString('utf8'), this.url);
      requests += resources.length;
      const results = await Promise.all(resources.map(({ path: sub, dest }) => this.get(sub, dest)));
      const failed = results.find((result) => result.status !== 200);
      if (failed) throw new Error(`HTTP ${failed.status} for a subresource of ${path}`);
      return { ok: true, totalMs: performance.now() - started, documentMs, requests };
    } catch (error) {
      return { ok: false, totalMs: performance.now() - started, documentMs, requests, error: error instanceof Error ? error.message : String(error) };
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Same-origin stylesheets, icons, scripts and images of an HTML page, deduplicated. */
export function subresources(html: string, origin: URL): { path: string; dest: Dest }[] {
  const $ = cheerio.load(html);
  const found = new Map<string, Dest>();
  const add = (ref: string | undefined, dest: Dest) => {
    if (!ref) return;
    const url = new URL(ref, origin);
    if (url.origin === origin.origin && !found.has(url.pathname + url.search)) found.set(url.pathname + url.search, dest);
  };
  $('link[rel="stylesheet"]').each((_, el) => add($(el).attr('href'), 'style'));
  $('link[rel~="icon"]').each((_, el) => add($(el).attr('href'), 'image'));
  $('script[src]').each((_, el) => add($(el).attr('src'), 'script'));
  $('img[src]').each((_, el) => add($(el).attr('src'), 'image'));
  return [...found].map(([path, dest]) => ({ path, dest }));
}
