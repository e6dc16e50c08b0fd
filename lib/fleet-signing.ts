import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { requireAdminToken } from './admin-token.ts';
import { PROXY_WORKER_STATES, validStates, type ProxyWorkerState } from './fleet-channel.ts';
import { announcementOf, PROXY_PRUNE_MS, type ProxyAnnouncement } from './proxy-announcement.ts';
import { HOST_REPORT_KEEP_MS, hostReportOf, type HostReport } from './host-report.ts';

// Fleet messages on Redis carry an HMAC, keyed by a key derived from the admin token, over their
// content and time: whoever can publish on Redis but does not hold the token cannot drain a worker,
// and a genuine message replayed later than FLEET_MESSAGE_MAX_AGE_MS is refused as stale.
//
//   channel message:  {"payload":"{\"at\":<ms>,\"states\":{...}}","sig":"<base64url HMAC>"}
//   hash entry:       field <worker> = {"state":"draining","at":<ms>,"sig":"<base64url HMAC>"}
//   proxy announcement: field <proxy id> = {"payload":"{\"id\":...,\"at\":<ms>}","sig":"<base64url HMAC>"}
//   host report:        field <host name> = the same envelope around a host report (lib/host-report.ts)

/** How far a message's time may lie from the reader's clock, either way (clocks must agree to within this). */
export const FLEET_MESSAGE_MAX_AGE_MS = 30_000;
/** Larger messages are dropped unread (a whole fleet's states take a few kB). */
export const FLEET_MESSAGE_MAX_BYTES = 256 * 1024;

const MESSAGE_LABEL = 'switchyard fleet v1 message\n';
const ENTRY_LABEL = 'switchyard fleet v1 state entry\n';
const ANNOUNCEMENT_LABEL = 'switchyard fleet v1 proxy announcement\n';
const HOST_REPORT_LABEL = 'switchyard fleet v1 host report\n';

/** The signing key: HKDF-SHA256 of the admin token with its own label, so it is never the token itself. */
export function fleetKey(adminToken: string): Buffer {
  return Buffer.from(hkdfSync('sha256', requireAdminToken(adminToken, 'fleet messages'), Buffer.alloc(0), 'switchyard fleet messages v1', 32));
}

function mac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

function macMatches(key: Buffer, text: string, signature: unknown): boolean {
  if (typeof signature !== 'string') return false;
  const presented = Buffer.from(signature, 'base64url');
  const expected = mac(key, text);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

export type Verified<T> = { ok: true; at: number; value: T } | { ok: false; reason: string };

function freshness(at: unknown, now: number): string | undefined {
  if (!Number.isSafeInteger(at)) return 'no time';
  if (Math.abs(now - (at as number)) > FLEET_MESSAGE_MAX_AGE_MS) return (at as number) > now ? 'from the future' : 'stale';
  return undefined;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function signFleetMessage(key: Buffer, states: Record<string, ProxyWorkerState>, at: number): string {
  const payload = JSON.stringify({ at, states });
  return JSON.stringify({ payload, sig: mac(key, MESSAGE_LABEL + payload).toString('base64url') });
}

export function verifyFleetMessage(key: Buffer, text: string, now = Date.now()): Verified<Record<string, ProxyWorkerState>> {
  if (text.length > FLEET_MESSAGE_MAX_BYTES) return { ok: false, reason: 'too large' };
  const envelope = parseObject(text);
  if (!envelope || typeof envelope.payload !== 'string' || envelope.sig === undefined) return { ok: false, reason: 'unsigned' };
  if (!macMatches(key, MESSAGE_LABEL + envelope.payload, envelope.sig)) return { ok: false, reason: 'bad signature' };
  const payload = parseObject(envelope.payload);
  if (!payload) return { ok: false, reason: 'malformed' };
  const stale = freshness(payload.at, now);
  if (stale) return { ok: false, reason: stale };
  return { ok: true, at: payload.at as number, value: validStates(payload.states) };
}

export function signStateEntry(key: Buffer, worker: string, state: ProxyWorkerState, at: number): string {
  return JSON.stringify({ state, at, sig: mac(key, `${ENTRY_LABEL}${worker}\n${state}\n${at}`).toString('base64url') });
}

/** One field of the state hash; the worker's name is signed too, so an entry cannot be moved to another worker. */
export function verifyStateEntry(key: Buffer, worker: string, text: string, now = Date.now()): Verified<ProxyWorkerState> {
  if (text.length > FLEET_MESSAGE_MAX_BYTES) return { ok: false, reason: 'too large' };
  const entry = parseObject(text);
  if (!entry || entry.sig === undefined) return { ok: false, reason: 'unsigned' };
  if (typeof entry.state !== 'string' || !PROXY_WORKER_STATES.has(entry.state)) return { ok: false, reason: 'malformed' };
  if (!macMatches(key, `${ENTRY_LABEL}${worker}\n${entry.state}\n${String(entry.at)}`, entry.sig)) return { ok: false, reason: 'bad signature' };
  const stale = freshness(entry.at, now);
  if (stale) return { ok: false, reason: stale };
  return { ok: true, at: entry.at as number, value: entry.state as ProxyWorkerState };
}

/**
 * A signed value stored in a hash field (a proxy announcement, a host report): bound to its field
 * and label, so it cannot be moved to another field or pass as another kind of record. Unlike
 * fleet states, an old one still verifies up to `maxAgeMs` (a reader shows its sender as down, with
 * when it was last seen); older is 'stale', and one from the future beyond the clock window too.
 */
function signFieldRecord(key: Buffer, label: string, field: string, value: { at: number }): string {
  const payload = JSON.stringify(value);
  return JSON.stringify({ payload, sig: mac(key, `${label}${field}\n${payload}`).toString('base64url') });
}

function verifyFieldRecord<T extends { at: number }>(
  key: Buffer,
  label: string,
  field: string,
  text: string,
  parse: (raw: unknown) => T | undefined,
  now: number,
  maxAgeMs: number,
): Verified<T> {
  if (text.length > FLEET_MESSAGE_MAX_BYTES) return { ok: false, reason: 'too large' };
  const envelope = parseObject(text);
  if (!envelope || typeof envelope.payload !== 'string' || envelope.sig === undefined) return { ok: false, reason: 'unsigned' };
  if (!macMatches(key, `${label}${field}\n${envelope.payload}`, envelope.sig)) return { ok: false, reason: 'bad signature' };
  const value = parse(parseObject(envelope.payload));
  if (!value) return { ok: false, reason: 'malformed' };
  if (value.at - now > FLEET_MESSAGE_MAX_AGE_MS) return { ok: false, reason: 'from the future' };
  if (now - value.at > maxAgeMs) return { ok: false, reason: 'stale' };
  return { ok: true, at: value.at, value };
}

export function signProxyAnnouncement(key: Buffer, announcement: ProxyAnnouncement): string {
  return signFieldRecord(key, ANNOUNCEMENT_LABEL, announcement.id, announcement);
}

/** One field of the proxies hash, bound to its field name (the proxy id); see verifyFieldRecord. */
export function verifyProxyAnnouncement(key: Buffer, id: string, text: string, now = Date.now(), maxAgeMs = PROXY_PRUNE_MS): Verified<ProxyAnnouncement> {
  const parse = (raw: unknown) => {
    const announcement = announcementOf(raw);
    return announcement?.id === id ? announcement : undefined;
  };
  return verifyFieldRecord(key, ANNOUNCEMENT_LABEL, id, text, parse, now, maxAgeMs);
}

export function signHostReport(key: Buffer, report: HostReport): string {
  return signFieldRecord(key, HOST_REPORT_LABEL, report.host, report);
}

/** One field of the hosts hash, bound to its field name (the host name); see verifyFieldRecord. */
export function verifyHostReport(key: Buffer, host: string, text: string, now = Date.now(), maxAgeMs = HOST_REPORT_KEEP_MS): Verified<HostReport> {
  const parse = (raw: unknown) => {
    const report = hostReportOf(raw);
    return report?.host === host ? report : undefined;
  };
  return verifyFieldRecord(key, HOST_REPORT_LABEL, host, text, parse, now, maxAgeMs);
}
