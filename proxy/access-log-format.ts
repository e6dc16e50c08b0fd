import type { RequestClass } from '../lib/config.ts';
import type { CloneCacheResult } from './clone-sharing/clone-cache-counts.ts';

/** One answered request, as the access log tells it. */
export interface AccessEntry {
  /** as the proxy resolved it: trusted X-Forwarded-For, PROXY protocol, or the peer */
  client: string;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  /** response body bytes handed to the client's socket (nginx's $body_bytes_sent) */
  bytes: number;
  referer: string | undefined;
  userAgent: string | undefined;
  /** undefined: answered before it was classified (a malformed request, /healthz) */
  lane: RequestClass | undefined;
  worker: string | undefined;
  /** time spent waiting for a worker slot, every attempt together (undefined: never asked for one) */
  queueMs: number | undefined;
  /** from the send to a worker to its response headers (undefined: no worker answered) */
  upstreamMs: number | undefined;
  totalMs: number;
  retried: boolean;
  /** clone sharing's X-Switchyard-Clone-Cache (undefined: not a clone-protocol request of the clone or bot lane) */
  cloneCache: CloneCacheResult | undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const HEX = '0123456789ABCDEF';

const two = (n: number) => (n < 10 ? `0${n}` : String(n));

/** `+0530`, or with a colon `+05:30`, from minutes east of UTC. */
function offsetText(offsetMinutes: number, colon: boolean): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${sign}${two(Math.floor(abs / 60))}${colon ? ':' : ''}${two(abs % 60)}`;
}

/** The wall clock at `offsetMinutes` east of UTC, read through a Date's UTC fields. */
const wallClock = (epochMs: number, offsetMinutes: number) => new Date(epochMs + offsetMinutes * 60_000);

/** nginx's $time_local: `10/Oct/2000:13:55:36 -0700`. */
export function formatTimeLocal(epochMs: number, offsetMinutes: number): string {
  const t = wallClock(epochMs, offsetMinutes);
  return (
    `${two(t.getUTCDate())}/${MONTHS[t.getUTCMonth()]}/${t.getUTCFullYear()}:` +
    `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())} ${offsetText(offsetMinutes, false)}`
  );
}

/** nginx's $time_iso8601: `2000-10-10T13:55:36-07:00`. */
export function formatTimeIso(epochMs: number, offsetMinutes: number): string {
  const t = wallClock(epochMs, offsetMinutes);
  return (
    `${t.getUTCFullYear()}-${two(t.getUTCMonth() + 1)}-${two(t.getUTCDate())}T` +
    `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())}${offsetText(offsetMinutes, true)}`
  );
}

/**
 * The time of day for log lines in the local time zone, formatted once a second (as nginx caches
 * its time strings) rather than once a request. The zone's offset is read at each new second, so a
 * change of daylight saving time shows within a second.
 */
export class LogClock {
  private second = Number.NaN;
  local = '';
  iso = '';

  constructor(private readonly now: () => number = Date.now) {}

  /** Brings `local` and `iso` up to the current second. */
  tick(): void {
    const ms = this.now();
    const second = Math.floor(ms / 1000);
    if (second === this.second) return;
    this.second = second;
    const offset = -new Date(ms).getTimezoneOffset();
    this.local = formatTimeLocal(second * 1000, offset);
    this.iso = formatTimeIso(second * 1000, offset);
  }
}

// nginx's ngx_http_log_escape: control bytes, '"', '\' and every byte from 0x7f up become \xHH.
const NEEDS_ESCAPE = /[\x00-\x1f"\\\x7f-\uffff]/;

function escapeByte(byte: number): string {
  return `\\x${HEX[byte >> 4]}${HEX[byte & 15]}`;
}

/**
 * A field as nginx writes it inside a combined log line. Node hands over the request line and
 * header values byte for byte as latin1 characters, so each character up to 0xff is one byte; one
 * above (not from the parser) is escaped as its UTF-8 bytes.
 */
export function escapeField(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 || code === 0x22 || code === 0x5c || code >= 0x7f) {
      if (code <= 0xff) out += escapeByte(code);
      else for (const byte of Buffer.from(char, 'utf8')) out += escapeByte(byte);
    } else {
      out += char;
    }
  }
  return out;
}

/** A header as a combined-log field: `-` when absent (nginx's not-found variable), escaped otherwise. */
const headerField = (value: string | undefined) => (value === undefined ? '-' : escapeField(value));

/**
 * nginx's (and Apache's) combined format, one line:
 * `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
 */
export function formatCombined(entry: AccessEntry, timeLocal: string): string {
  const request = escapeField(`${entry.method} ${entry.url} HTTP/${entry.httpVersion}`);
  return `${entry.client} - - [${timeLocal}] "${request}" ${entry.status} ${entry.bytes} "${headerField(entry.referer)}" "${headerField(entry.userAgent)}"\n`;
}

const tenths = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms * 10) / 10);

/** One JSON object per line; every key is always there (null: not known for this request). */
export function formatJson(entry: AccessEntry, timeIso: string): string {
  return `${JSON.stringify({
    time: timeIso,
    client: entry.client,
    method: entry.method,
    url: entry.url,
    protocol: `HTTP/${entry.httpVersion}`,
    status: entry.status,
    bytes: entry.bytes,
    referer: entry.referer ?? null,
    userAgent: entry.userAgent ?? null,
    lane: entry.lane ?? null,
    worker: entry.worker ?? null,
    queueMs: tenths(entry.queueMs),
    upstreamMs: tenths(entry.upstreamMs),
    totalMs: tenths(entry.totalMs),
    retried: entry.retried,
    cloneCache: entry.cloneCache ?? null,
  })}\n`;
}
