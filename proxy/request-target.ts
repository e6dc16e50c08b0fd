// The request target, settled before anything else reads it: what the proxy classifies, serves and
// forwards is the one canonical path a worker will get. http-proxy-3 rebuilds the path through
// WHATWG `URL` (which resolves dot segments, turns `\` into `/` and throws on a bad authority); doing
// that here first, inside a check, means its parse cannot throw and cannot disagree with ours.

export type RequestTarget =
  | { ok: true; path: string; host: string | undefined }
  | { ok: false; reason: string };

const BASE = 'http://base.invalid';
const ABSOLUTE_FORM = /^https?:\/\//i;
/** an RFC 3986 authority, then the path, query or end: WHATWG URL alone would read `http:///x` as host x */
const AUTHORITY_THEN_PATH = /^https?:\/\/[\w.~%!$&'()*+,;=:@[\]-]+(?:[/?#]|$)/i;
const UNRESERVED_ESCAPE = /%(2[dDeE]|3\d|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/g;

/**
 * RFC 3986 6.2.2.2: a percent-escape of an unreserved character means the character itself, and a
 * worker's router may decode it (`/%5Fworker/` is `/_worker/`), so the proxy decodes it in the path
 * first. The query is the application's to read, and goes as sent.
 */
function decodeUnreserved(target: string): string {
  if (!target.includes('%')) return target;
  const mark = target.indexOf('?');
  const path = mark < 0 ? target : target.slice(0, mark);
  const decoded = path.replace(UNRESERVED_ESCAPE, (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)));
  return mark < 0 ? decoded : decoded + target.slice(mark);
}

// Targets that URL would return unchanged (the common case), checked without building one: only
// characters it never escapes, no dot segment, no empty query. canonicalPath's tests hold the two to agree.
const PLAIN = /^\/[\w\-.~!$&()*+,;=:@/?]*$/;
const DOT_SEGMENT = /\/\.\.?(?:[/?]|$)/;

/** path and query of an origin-form target, normalised as WHATWG URL does; undefined if it cannot be parsed */
export function canonicalPath(originForm: string): string | undefined {
  if (PLAIN.test(originForm) && !DOT_SEGMENT.test(originForm) && !originForm.endsWith('?')) return originForm;
  try {
    const url = new URL(BASE + decodeUnreserved(originForm));
    return url.pathname + url.search;
  } catch {
    return undefined;
  }
}

/**
 * Origin-form (`/path?query`) and absolute-form (`http://host/path`, RFC 9112 3.2.2: its authority
 * replaces Host) are accepted; asterisk-form, authority-form and anything else are not.
 */
export function parseRequestTarget(raw: string): RequestTarget {
  if (raw.startsWith('/')) {
    const path = canonicalPath(raw);
    return path === undefined ? { ok: false, reason: 'invalid request target' } : { ok: true, path, host: undefined };
  }
  if (!ABSOLUTE_FORM.test(raw)) return { ok: false, reason: 'request target must be a path or an http URL' };
  if (!AUTHORITY_THEN_PATH.test(raw)) return { ok: false, reason: 'invalid request target' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'invalid request target' };
  }
  if (url.username || url.password) return { ok: false, reason: 'request target must not carry user information' };
  const path = canonicalPath(url.pathname + url.search);
  return path === undefined || !url.host ? { ok: false, reason: 'invalid request target' } : { ok: true, path, host: url.host };
}

/**
 * Whether the canonical path lies under one of the prefixes, compared without case and with an
 * escaped slash read as a slash (a router may decode `%2F` before it matches).
 */
export function isUnderPrefix(path: string, prefixes: readonly string[]): boolean {
  if (path.includes('%')) path = path.replace(/%2f/gi, '/');
  for (const prefix of prefixes) {
    if (path.length >= prefix.length && path.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase()) return true;
  }
  return false;
}
