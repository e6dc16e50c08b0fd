import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { replaceFileSync } from '../../lib/durable-file.ts';

/**
 * What dashboard sessions need to outlive a supervisor restart: the epoch their signing key is
 * derived from (a new epoch ends every session) and the logged-out session ids with their expiry.
 */
export interface SessionState {
  epoch: string;
  revoked: Map<string, number>;
}

const EPOCH = /^[\w-]{16,64}$/;
const SESSION_ID = /^[\w-]{1,64}$/;

/**
 * The saved state with expired logouts dropped; undefined when there is no file. Throws on a file
 * that is not what saveSessionState wrote or holds more than `maxRevoked` logouts.
 */
export function loadSessionState(file: string, maxRevoked: number, now = Date.now()): SessionState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const saved = JSON.parse(text) as { epoch?: unknown; revoked?: unknown };
  if (typeof saved.epoch !== 'string' || !EPOCH.test(saved.epoch)) throw new Error('no valid epoch');
  if (typeof saved.revoked !== 'object' || saved.revoked === null) throw new Error('no list of logouts');
  const revoked = new Map<string, number>();
  for (const [id, expiresAt] of Object.entries(saved.revoked)) {
    if (!SESSION_ID.test(id) || !Number.isSafeInteger(expiresAt)) throw new Error(`bad logout entry ${JSON.stringify(id).slice(0, 80)}`);
    if ((expiresAt as number) > now) revoked.set(id, expiresAt as number);
  }
  if (revoked.size > maxRevoked) throw new Error(`${revoked.size} logouts, more than the ${maxRevoked} kept`);
  return { epoch: saved.epoch, revoked };
}

/** Replaces the file in one step (mode 0600): a crash or a full disk leaves the previous state. */
export function saveSessionState(file: string, state: SessionState): void {
  mkdirSync(path.dirname(file), { recursive: true });
  replaceFileSync(file, `${JSON.stringify({ epoch: state.epoch, revoked: Object.fromEntries(state.revoked) })}\n`, 0o600);
}
