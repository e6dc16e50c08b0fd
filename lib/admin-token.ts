import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './config.ts';
import { createFileSync } from './durable-file.ts';

export const ADMIN_TOKEN_ENV = 'SWITCHYARD_ADMIN_TOKEN';
/** Shorter tokens are refused: a generated one has 32 characters (24 random bytes). */
export const MIN_ADMIN_TOKEN_LENGTH = 20;
const MAX_TOKEN_FILE_BYTES = 4096;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
const EXPECTED = `expected one line of at least ${MIN_ADMIN_TOKEN_LENGTH} visible ASCII characters, e.g. from \`openssl rand -base64 32\``;

/**
 * An admin token that cannot be used (empty, short, readable by others): start-up stops with exit
 * 78 like any other configuration error. `file` names the token file or SWITCHYARD_ADMIN_TOKEN.
 */
export class AdminTokenError extends ConfigError {
  constructor(file: string, problem: string) {
    super(file, [problem]);
    this.name = 'AdminTokenError';
    this.message = problem;
  }
}

/** Why `token` (already trimmed) cannot be the admin token, or undefined when it can. */
export function adminTokenProblem(token: string): string | undefined {
  if (token.length === 0) return 'is empty (or only whitespace)';
  if (!VISIBLE_ASCII.test(token)) return 'contains spaces or characters that are not visible ASCII';
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) return `is only ${token.length} characters long`;
  return undefined;
}

/** The token file's content, or undefined when there is no file; refuses one that others may read or write. */
function readTokenFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AdminTokenError(file, `cannot read the admin token file ${file}: ${(error as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AdminTokenError(file, `the admin token file ${file} is not a regular file`);
    if (process.platform !== 'win32') {
      // As ssh does for private keys: a secret others can read is not a secret, one they can write not ours.
      if ((stat.mode & 0o077) !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        throw new AdminTokenError(file, `the admin token file ${file} is open to group or others (mode ${mode}): run chmod 600 ${file}`);
      }
      const uid = process.getuid!();
      if (stat.uid !== uid && stat.uid !== 0) {
        throw new AdminTokenError(file, `the admin token file ${file} belongs to uid ${stat.uid}, not to this user (uid ${uid}) or root: chown it or remove it`);
      }
    }
    if (stat.size > MAX_TOKEN_FILE_BYTES) throw new AdminTokenError(file, `the admin token file ${file} has ${stat.size} bytes: ${EXPECTED}`);
    const token = readFileSync(fd, 'utf8').trim();
    const problem = adminTokenProblem(token);
    if (problem) throw new AdminTokenError(file, `the admin token file ${file} ${problem}: ${EXPECTED}; or remove the file to have a token generated`);
    return token;
  } finally {
    closeSync(fd);
  }
}

/**
 * The admin token shared by the supervisor's API and the proxy's control port:
 * SWITCHYARD_ADMIN_TOKEN, else <data>/admin-token (created whole, mode 0600, on first use).
 * Never an empty or weak token: throws AdminTokenError instead.
 */
export function adminToken(dataDir: string, env: Record<string, string | undefined> = process.env): { token: string; file?: string } {
  const file = path.join(dataDir, 'admin-token');
  const fromEnv = env[ADMIN_TOKEN_ENV];
  if (fromEnv !== undefined) {
    const token = fromEnv.trim();
    const problem = adminTokenProblem(token);
    if (problem) throw new AdminTokenError(ADMIN_TOKEN_ENV, `${ADMIN_TOKEN_ENV} is set but ${problem}: ${EXPECTED}; or unset it to use ${file}`);
    return { token };
  }
  const existing = readTokenFile(file);
  if (existing !== undefined) return { token: existing, file };
  const token = randomBytes(24).toString('base64url');
  try {
    mkdirSync(dataDir, { recursive: true });
    if (createFileSync(file, `${token}\n`, 0o600)) return { token, file };
  } catch (error) {
    throw new AdminTokenError(file, `cannot create the admin token file ${file}: ${(error as Error).message}`);
  }
  // Another process (the proxy or the supervisor, started together) created it first: use theirs.
  const theirs = readTokenFile(file);
  if (theirs === undefined) throw new AdminTokenError(file, `the admin token file ${file} vanished while it was being created`);
  return { token: theirs, file };
}

/** Equal secrets, compared in constant time whatever their lengths; an empty expected secret matches nothing. */
export function secretEquals(presented: string, expected: string): boolean {
  if (expected.length === 0) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected)) && presented.length === expected.length;
}

/** Constant-time check of an `Authorization: Bearer <token>` header; never true for an empty token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer (.+)$/i.exec(header ?? '')?.[1]?.trim() ?? '';
  return presented.length > 0 && secretEquals(presented, token);
}

/** For constructors keyed by the admin token: an empty one would mean no authentication at all. */
export function requireAdminToken(token: string, user: string): string {
  if (token.trim().length === 0) throw new Error(`${user}: the admin token is empty`);
  return token;
}
