import type { IncomingHttpHeaders } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { CidrSet } from '../lib/cidr.ts';
import type { ClassifyRule, Lane, MatchSpec, RequestClass, SwitchyardConfig } from '../lib/config.ts';

export const BOT_TOKEN_HEADER = 'x-switchyard-bot-token';

export interface RequestFacts {
  method: string;
  /** path without the query string */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  clientIp: string;
}

type Predicate = (facts: RequestFacts) => boolean;

const regex = (source: string) => new RegExp(source, 'i');

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function tokenMatcher(tokens: readonly string[]): (presented: string | undefined) => boolean {
  const expected = tokens.map((token) => Buffer.from(token));
  return (presented) => {
    if (!presented) return false;
    const given = Buffer.from(presented);
    return expected.some((token) => token.length === given.length && timingSafeEqual(token, given));
  };
}


/** Splits a URL into path and query without throwing on odd input. */
const NO_QUERY = new URLSearchParams(); // shared: rules only read it

export function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const mark = url.indexOf('?');
  if (mark < 0) return { path: url, query: NO_QUERY };
  return { path: url.slice(0, mark), query: new URLSearchParams(url.slice(mark + 1)) };
}

/**
 * Compiles the ordered rule list once; classify() then runs the first-match-wins list.
 * Static is decided by prefix before any rule, and "page" is the fallback.
 */
export class Classifier {
  private readonly rules: Array<{ lane: Lane; matches: Predicate }>;
  private readonly staticPrefix: string;
  private readonly botTokenMatches: (presented: string | undefined) => boolean;
  private readonly crawlerUserAgents: RegExp | undefined;

  constructor(config: Pick<SwitchyardConfig, 'classify' | 'bots'> & { proxy: { static: { prefix: string } } }) {
    this.staticPrefix = config.proxy.static.prefix;
    const botCidrs = new CidrSet(config.bots.cidrs);
    // One alternation instead of a test per pattern: this runs for every request.
    const anyOf = (sources: readonly string[]) => (sources.length ? regex(sources.map((source) => `(?:${source})`).join('|')) : undefined);
    const botUserAgents = anyOf([...config.bots.userAgents, ...config.bots.crawlerUserAgents]);
    this.crawlerUserAgents = anyOf(config.bots.crawlerUserAgents);
    const botTokenMatches = (this.botTokenMatches = tokenMatcher(config.bots.tokens));
    const compileMatch = (spec: MatchSpec): Predicate => {
      const checks: Predicate[] = [];
      if (spec.method) {
        const methods = new Set(spec.method);
        checks.push((facts) => methods.has(facts.method));
      }
      if (spec.pathPrefix !== undefined) {
        const prefix = spec.pathPrefix;
        checks.push((facts) => facts.path.startsWith(prefix));
      }
      if (spec.path !== undefined) {
        const pattern = regex(spec.path);
        checks.push((facts) => pattern.test(facts.path));
      }
      for (const [name, source] of Object.entries(spec.query ?? {})) {
        const pattern = regex(source);
        checks.push((facts) => {
          if (!facts.query.has(name)) return false;
          for (const value of facts.query.getAll(name)) if (pattern.test(value)) return true;
          return false;
        });
      }
      for (const [name, source] of Object.entries(spec.headers ?? {})) {
        const pattern = regex(source);
        checks.push((facts) => {
          const value = headerValue(facts.headers, name);
          return value !== undefined && pattern.test(value);
        });
      }
      if (spec.userAgent !== undefined) {
        const pattern = regex(spec.userAgent);
        checks.push((facts) => pattern.test(headerValue(facts.headers, 'user-agent') ?? ''));
      }
      if (spec.cidrs) {
        const cidrs = new CidrSet(spec.cidrs);
        checks.push((facts) => cidrs.has(facts.clientIp));
      }
      if (spec.botCidr) checks.push((facts) => botCidrs.has(facts.clientIp));
      if (spec.botUserAgent) {
        checks.push((facts) => botUserAgents !== undefined && botUserAgents.test(headerValue(facts.headers, 'user-agent') ?? ''));
      }
      if (spec.botToken) checks.push((facts) => botTokenMatches(headerValue(facts.headers, BOT_TOKEN_HEADER)));
      // Plain loops, not every()/some() with a closure: these run for every request.
      return (facts) => {
        for (const check of checks) if (!check(facts)) return false;
        return true;
      };
    };
    this.rules = config.classify.map((rule: ClassifyRule) => {
      const alternatives = rule.any.map(compileMatch);
      const matches = (facts: RequestFacts) => {
        for (const alternative of alternatives) if (alternative(facts)) return true;
        return false;
      };
      return { lane: rule.class, matches };
    });
  }

  /** A crawler that says who it is (bots.crawlerUserAgents). */
  isCrawler(headers: IncomingHttpHeaders): boolean {
    return this.crawlerUserAgents !== undefined && this.crawlerUserAgents.test(headerValue(headers, 'user-agent') ?? '');
  }

  /** The request's bot token when it is one of the configured ones (else undefined). */
  knownBotToken(headers: IncomingHttpHeaders): string | undefined {
    const presented = headerValue(headers, BOT_TOKEN_HEADER);
    return this.botTokenMatches(presented) ? presented : undefined;
  }

  classify(facts: RequestFacts): RequestClass {
    if (facts.path.startsWith(this.staticPrefix)) return 'static';
    for (const rule of this.rules) {
      if (rule.matches(facts)) return rule.lane;
    }
    return 'page';
  }
}
