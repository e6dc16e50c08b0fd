import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'switchyard_session';

export interface Session {
  id: string;
  /** what the cookie carries: id, expiry and their signature */
  cookieValue: string;
  /** required in X-CSRF-Token on every POST the session makes */
  csrf: string;
  expiresAt: number;
}

/** Equal strings, compared in constant time whatever their lengths (digests have one length). */
export function secretEquals(presented: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected)) && presented.length === expected.length;
}

/**
 * Dashboard logins as signed cookies `<random id>.<expiry>.<HMAC>`, keyed by the admin token: they
 * survive a supervisor restart, and changing the token ends every session. Logouts are remembered
 * in memory until the session would have expired anyway.
 */
export class SessionStore {
  private readonly key: Buffer;
  private readonly revoked = new Map<string, number>();

  constructor(
    adminToken: string,
    readonly ttlMs = 12 * 3_600_000,
  ) {
    this.key = createHmac('sha256', adminToken).update('switchyard dashboard sessions').digest();
  }

  create(now = Date.now()): Session {
    return this.session(randomBytes(32).toString('base64url'), now + this.ttlMs);
  }

  /** The session a cookie value stands for, if it is genuine, current and not logged out. */
  get(cookieValue: string | undefined, now = Date.now()): Session | undefined {
    const [id, expiry, signature] = (cookieValue ?? '').split('.');
    const expiresAt = Number(expiry);
    if (!id || !signature || !Number.isSafeInteger(expiresAt) || expiresAt <= now) return undefined;
    if (!secretEquals(signature, this.sign(`${id}.${expiresAt}`)) || this.revoked.has(id)) return undefined;
    return this.session(id, expiresAt);
  }

  revoke(session: Session, now = Date.now()): void {
    this.revoked.set(session.id, session.expiresAt);
    for (const [id, expiresAt] of this.revoked) if (expiresAt <= now) this.revoked.delete(id);
  }

  private session(id: string, expiresAt: number): Session {
    return { id, expiresAt, cookieValue: `${id}.${expiresAt}.${this.sign(`${id}.${expiresAt}`)}`, csrf: this.sign(`csrf ${id}`) };
  }

  private sign(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return cookies;
}

export function sessionCookie(session: Session | undefined, secure: boolean, now = Date.now()): string {
  const maxAge = session ? Math.floor((session.expiresAt - now) / 1000) : 0;
  return `${SESSION_COOKIE}=${session?.cookieValue ?? ''}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}
