import type { IncomingHttpHeaders } from 'node:http';
import { bearerMatches, requireAdminToken, secretEquals } from '../../lib/admin-token.ts';
import type { Logger } from '../../lib/log.ts';
import { ThrottledLog } from '../../lib/throttled-log.ts';
import { budgetKey, FailureLimiter } from './rate-limit.ts';
import { parseCookies, SESSION_COOKIE, SessionStore, type Session } from './sessions.ts';

export type Verdict =
  | { ok: true; via: 'bearer' }
  | { ok: true; via: 'session'; session: Session }
  | { ok: false; status: 401 }
  | { ok: false; status: 429; retryAfterSec: number };

export interface AccessOptions {
  sessionTtlMs?: number;
  /** where logouts are kept across supervisor restarts (see SessionStore) */
  sessionsFile?: string;
  limiter?: FailureLimiter;
  log?: Logger;
}

/**
 * Who may use the supervisor's HTTP API, dashboard and WebSocket: the admin token as a Bearer
 * header, or a session cookie from the login form. Session cookies are signed, so presenting a
 * made-up one is not worth limiting.
 *
 * The right token always passes. Wrong ones spend their address's failure budget, and once it is
 * spent they get 429 instead of 401. Every local client shares 127.0.0.1, so refusing the right
 * token too would let any local process lock the operator out. That also means the budget does
 * not stop anyone from guessing (each request still tests a token). The token's length does: it
 * is 192 random bits when generated, and at least MIN_ADMIN_TOKEN_LENGTH characters when given.
 * The budget tells clients to back off and makes guessing show in the log.
 */
export class Access {
  readonly sessions: SessionStore;
  readonly limiter: FailureLimiter;
  private readonly exhausted: ThrottledLog | undefined;

  constructor(
    private readonly token: string,
    options: AccessOptions = {},
  ) {
    requireAdminToken(token, 'supervisor API');
    this.sessions = new SessionStore(token, { ttlMs: options.sessionTtlMs, file: options.sessionsFile, log: options.log });
    this.limiter = options.limiter ?? new FailureLimiter();
    this.exhausted = options.log && new ThrottledLog(options.log);
  }

  authenticate(headers: IncomingHttpHeaders, clientAddress: string): Verdict {
    if (headers.authorization !== undefined) {
      const verdict = this.checkToken(clientAddress, (token) => bearerMatches(headers.authorization, token));
      return verdict.ok ? { ok: true, via: 'bearer' } : verdict;
    }
    const session = this.sessions.get(parseCookies(headers.cookie).get(SESSION_COOKIE));
    return session ? { ok: true, via: 'session', session } : { ok: false, status: 401 };
  }

  /** The login form's token, under the same failure budget as Bearer headers. */
  login(presented: string, clientAddress: string): { ok: true; session: Session } | Exclude<Verdict, { ok: true }> {
    const verdict = this.checkToken(clientAddress, (token) => secretEquals(presented, token));
    return verdict.ok ? { ok: true, session: this.sessions.create() } : verdict;
  }

  /** A cookie session must echo its CSRF token on state-changing requests; Bearer clients cannot be forged by a browser. */
  csrfValid(verdict: Verdict, headers: IncomingHttpHeaders): boolean {
    if (!verdict.ok || verdict.via === 'bearer') return verdict.ok;
    const presented = headers['x-csrf-token'];
    return typeof presented === 'string' && secretEquals(presented, verdict.session.csrf);
  }

  private checkToken(clientAddress: string, matches: (token: string) => boolean): { ok: true } | Exclude<Verdict, { ok: true }> {
    if (matches(this.token)) return { ok: true };
    const key = budgetKey(clientAddress);
    const retryAfterSec = this.limiter.retryAfterSec(key);
    if (retryAfterSec > 0) return { ok: false, status: 429, retryAfterSec };
    this.limiter.fail(key);
    if (this.limiter.retryAfterSec(key) > 0) this.exhausted?.write({ client: key }, 'wrong admin tokens: this address spent its budget and gets 429 for wrong ones');
    return { ok: false, status: 401 };
  }
}

/**
 * A browser's WebSocket or form request must come from the dashboard's own origin (scheme and
 * host:port as the request addressed us). Non-browser clients send no Origin and need a Bearer token.
 */
export function sameOrigin(headers: IncomingHttpHeaders, secure: boolean): boolean {
  const origin = headers.origin;
  if (!origin || !headers.host) return false;
  return origin === `${secure ? 'https' : 'http'}://${headers.host}`;
}
