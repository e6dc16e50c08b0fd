import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'switchyard_session';

export interface Session {
  id: string;
  /** required in X-CSRF-Token on every POST the session makes */
  csrf: string;
  expiresAt: number;
}

/** Equal strings, compared in constant time whatever their lengths (digests have one length). */
export function secretEquals(presented: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected)) && presented.length === expected.length;
}

/** Dashboard logins: random ids kept in memory only, so a supervisor restart logs everyone out. */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly ttlMs = 12 * 3_600_000,
    private readonly maxSessions = 1_000,
  ) {}

  create(now = Date.now()): Session {
    const session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), expiresAt: now + this.ttlMs };
    this.sessions.set(session.id, session);
    if (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    return session;
  }

  get(id: string | undefined, now = Date.now()): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (session && session.expiresAt <= now) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
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
  return `${SESSION_COOKIE}=${session?.id ?? ''}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}
