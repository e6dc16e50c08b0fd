import http from 'node:http';
import { BROWSER_UA } from '../lib/browser.ts';
import type { AttackReport } from '../hardening/attacks.ts';

// What the greedy-clients parties share: one GET that counts the body instead of keeping it (a
// party may pull megabytes a second), and a tally of how its requests or connections ended, in
// the hardening scenario's report shape so that its formatting serves here too.

export interface PartyReport extends AttackReport {
  /** response bytes the party took in */
  bytes: number;
}

export interface Party {
  /** ends whatever the party still has open (counted as "... at the end") and reports */
  stop(): Promise<PartyReport>;
}

export const newReport = (): PartyReport => ({ connections: 0, outcomes: {}, hung: 0, bytes: 0 });

/** One request or connection more under `key`, which lasted `seconds`. */
export function tally(report: PartyReport, key: string, seconds: number): void {
  const outcome = (report.outcomes[key] ??= { count: 0, totalSec: 0 });
  outcome.count++;
  outcome.totalSec += seconds;
  report.connections++;
}

/** What a browser sends for a page it navigates to (bench/lib/browser.ts's document request). */
export const NAVIGATION_HEADERS = {
  'user-agent': BROWSER_UA,
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'accept-language': 'en-US,en;q=0.9',
  'sec-fetch-dest': 'document',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-site': 'none',
};

export interface Got {
  /** 0 when no response came */
  status: number;
  bytes: number;
  seconds: number;
  /** the body of an HTML response, when asked for */
  html?: string;
  /** why there is no complete response */
  error?: string;
}

/**
 * One GET over `agent`; the body is counted and dropped, except an HTML one of up to keepHtmlBytes
 * when asked for. Never rejects: a network error, a cut response or the timeout is `error`.
 */
export function timedGet(agent: http.Agent, origin: URL, path: string, headers: Record<string, string>, timeoutMs: number, keepHtmlBytes = 0): Promise<Got> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  return new Promise((resolve) => {
    let status = 0;
    let bytes = 0;
    const req = http.request({ host: origin.hostname, port: origin.port, path, agent, headers }, (res) => {
      status = res.statusCode ?? 0;
      const keep = keepHtmlBytes > 0 && /^text\/html/i.test(res.headers['content-type'] ?? '');
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (keep && bytes <= keepHtmlBytes) chunks.push(chunk);
      });
      res.once('end', () => resolve({ status, bytes, seconds: seconds(), html: keep ? Buffer.concat(chunks).toString('utf8') : undefined }));
      res.once('error', (error) => resolve({ status, bytes, seconds: seconds(), error: error.message }));
      res.once('close', () => resolve({ status, bytes, seconds: seconds(), error: 'closed before the end' }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.once('error', (error: NodeJS.ErrnoException) => resolve({ status, bytes, seconds: seconds(), error: error.code ?? error.message }));
    req.end();
  });
}

/** "200", "429", or "error ECONNRESET" (a response cut after its status: "200 cut"). */
export const outcomeOf = (got: Got) => (got.error ? (got.status ? `${got.status} cut` : `error ${got.error}`) : String(got.status));
