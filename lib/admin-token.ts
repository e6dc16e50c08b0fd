import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The admin token shared by the supervisor's API and the proxy's control port:
 * SWITCHYARD_ADMIN_TOKEN, else <data>/admin-token (created mode 0600 on first use).
 */
export function adminToken(dataDir: string, env: Record<string, string | undefined> = process.env): { token: string; file?: string } {
  const fromEnv = env.SWITCHYARD_ADMIN_TOKEN;
  if (fromEnv) return { token: fromEnv };
  const file = path.join(dataDir, 'admin-token');
  try {
    return { token: readFileSync(file, 'utf8').trim(), file };
  } catch {
    mkdirSync(dataDir, { recursive: true });
    const token = randomBytes(24).toString('base64url');
    try {
      writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
      return { token, file };
    } catch {
      // Another process created it first: use theirs.
      return { token: readFileSync(file, 'utf8').trim(), file };
    }
  }
}

/** Constant-time check of an `Authorization: Bearer <token>` header. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1]?.trim() ?? '');
  const expected = Buffer.from(token);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
