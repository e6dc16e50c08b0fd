import { createHmac, randomBytes } from 'node:crypto';
import { requireAdminToken, secretEquals } from '../../lib/admin-token.ts';
import type { Logger } from '../../lib/log.ts';
import { loadSessionState, saveSessionState, type SessionState } from './session-state-file.ts';

export const SESSION_COOKIE = 'switchyard_session';

export interface Session {
  id: string;
  /** what the cookie carries: id, expiry and their signature */
  cookieValue: string;
  /** required in X-CSRF-Token on every POST the session makes */
  csrf: string;
  expiresAt: number;
}

export interface SessionStoreOptions {
  ttlMs?: number;
  /** where logouts are kept so a restarted supervisor still refuses them (without: memory only) */
  file?: string;
  /** logouts remembered at once; one more ends every session (a new epoch) instead of forgetting one */
  maxRevoked?: number;
  log?: Logger;
}

const newEpoch = () => randomBytes(16).toString('base64url');

/**
 * Dashboard logins as signed cookies `<random id>.<expiry>.<HMAC>`, keyed by the admin token and
 * the store's epoch: they survive a supervisor restart, and changing the token ends every session.
 * Logouts are remembered (in `file` when given) until the session would have expired anyway.
 */
export class SessionStore {
  readonly ttlMs: number;
  private readonly maxRevoked: number;
  private readonly tokenKey: Buffer;
  private key: Buffer;
  private state: SessionState;

  constructor(
    adminToken: string,
    private readonly options: SessionStoreOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 12 * 3_600_000;
    this.maxRevoked = options.maxRevoked ?? 1000;
    this.tokenKey = createHmac('sha256', requireAdminToken(adminToken, 'dashboard sessions')).update('switchyard dashboard sessions').digest();
    this.state = this.loaded() ?? { epoch: options.file ? newEpoch() : 'in-memory-sessions', revoked: new Map() };
    this.key = this.epochKey();
    if (options.file) this.trySave();
  }

  create(now = Date.now()): Session {
    return this.session(randomBytes(32).toString('base64url'), now + this.ttlMs);
  }

  /** The session a cookie value stands for, if it is genuine, current and not logged out. */
  get(cookieValue: string | undefined, now = Date.now()): Session | undefined {
    const [id, expiry, signature] = (cookieValue ?? '').split('.');
    const expiresAt = Number(expiry);
    if (!id || !signature || !Number.isSafeInteger(expiresAt) || expiresAt <= now) return undefined;
    if (!secretEquals(signature, this.sign(`${id}.${expiresAt}`)) || this.state.revoked.has(id)) return undefined;
    return this.session(id, expiresAt);
  }

  /**
   * Logs a session out, in memory at once and then in the file. Throws when the file cannot be
   * written: the logout then holds only until the supervisor restarts.
   */
  revoke(session: Session, now = Date.now()): void {
    for (const [id, expiresAt] of this.state.revoked) if (expiresAt <= now) this.state.revoked.delete(id);
    if (this.state.revoked.size >= this.maxRevoked) {
      // Forgetting a logout would bring that session back: end them all instead.
      this.options.log?.warn({ kept: this.maxRevoked }, 'dashboard: too many logouts to remember; every session is ended');
      this.endAll();
    } else {
      this.state.revoked.set(session.id, session.expiresAt);
    }
    if (this.options.file) saveSessionState(this.options.file, this.state);
  }

  private endAll(): void {
    this.state = { epoch: newEpoch(), revoked: new Map() };
    this.key = this.epochKey();
  }

  private loaded(): SessionState | undefined {
    if (!this.options.file) return undefined;
    try {
      return loadSessionState(this.options.file, this.maxRevoked);
    } catch (error) {
      // Unreadable logouts cannot be honoured one by one: a new epoch ends every session.
      this.options.log?.warn({ file: this.options.file, err: (error as Error).message }, 'dashboard: session state unreadable; every session is ended');
      return undefined;
    }
  }

  private trySave(): void {
    try {
      saveSessionState(this.options.file!, this.state);
    } catch (error) {
      this.options.log?.error({ file: this.options.file, err: (error as Error).message }, 'dashboard: cannot save session state; logouts last until a restart');
    }
  }

  private epochKey(): Buffer {
    return createHmac('sha256', this.tokenKey).update(`epoch ${this.state.epoch}`).digest();
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
