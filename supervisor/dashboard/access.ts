import type { IncomingHttpHeaders } from 'node:http';
import { bearerMatches } from '../../lib/admin-token.ts';
import { FailureLimiter } from './rate-limit.ts';
import { parseCookies, secretEquals, SESSION_COOKIE, SessionStore, type Session } from './sessions.ts';

export type Verdict =
  | { ok: true; via: 'bearer' }
  | { ok: true; via: 'session'; session: Session }
  | { ok: false; status: 401 }
  | { ok: false; status: 429; retryAfterSec: number };

export interface AccessOptions {
  sessionTtlMs?: number;
  limiter?: FailureLimiter;
}

/**
 * Who may use the supervisor's HTTP API, dashboard and WebSocket: the admin token as a Bearer
 * header, or a session cookie from the login form. Wrong tokens spend the caller's failure budget;
 * session cookies are signed, so presenting a made-up one is not worth limiting.
 */
export class Access {
  readonly sessions: SessionStore;
  readonly limiter: FailureLimiter;

  constructor(
    private readonly token: string,
    options: AccessOptions = {},
  ) {
    this.sessions = new SessionStore(token, options.sessionTtlMs);
    this.limiter = options.limiter ?? new FailureLimiter();
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
    const retryAfterSec = this.limiter.retryAfterSec(clientAddress);
    if (retryAfterSec > 0) return { ok: false, status: 429, retryAfterSec };
    if (matches(this.token)) return { ok: true };
    this.limiter.fail(clientAddress);
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
