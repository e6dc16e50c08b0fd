// The arguments of a Mercurial HTTP wire-protocol command, read as hgweb reads them
// (wireprotoserver.httpv1protocolhandler._args): the query string, updated by either the first
// X-HgArgs-Post bytes of the body (httppostargs) or, without that header, the X-HgArg-1..N
// headers joined in order into one urlencoded string.
//
// Only the plain form Python's urlencode writes is read (`name=value` pairs joined by `&`, values
// quoted): anything else (`;` separators, repeated names, bare names, stray `%`) is where two
// parsers could disagree about what was asked, so it is not read at all.
import type { IncomingHttpHeaders } from 'node:http';

export type HgArguments = { ok: true; args: Map<string, string> } | { ok: false; reason: string };

export interface HgArgumentSources {
  query: string;
  headers: IncomingHttpHeaders;
  body: Buffer | undefined;
}

const URLENCODED = /^[A-Za-z0-9_.~+%=&-]*$/;
const STRAY_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** Python's unquote_plus, byte for char (latin1); a malformed escape stays as it is. */
function unquote(raw: string): string {
  return raw.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_escape, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** The pairs of an urlencoded string in urlencode's plain form, or undefined for anything else. */
function plainPairs(text: string, maxPairs: number): Array<[string, string]> | undefined {
  if (text === '') return [];
  if (!URLENCODED.test(text) || STRAY_PERCENT.test(text)) return undefined;
  const parts = text.split('&', maxPairs + 1);
  if (parts.length > maxPairs) return undefined;
  const pairs: Array<[string, string]> = [];
  for (const part of parts) {
    const equals = part.indexOf('=');
    if (equals <= 0 || part.includes('=', equals + 1)) return undefined;
    pairs.push([unquote(part.slice(0, equals)), unquote(part.slice(equals + 1))]);
  }
  return pairs;
}

/** Whether a query string asks hgweb for `getbundle`, in any spelling a lenient reader accepts. */
export function namesGetbundle(query: string): boolean {
  return query.split(/[&;]/).some((param) => {
    const equals = param.indexOf('=');
    if (equals < 0 || unquote(param.slice(0, equals)).trim().toLowerCase() !== 'cmd') return false;
    return unquote(param.slice(equals + 1)).trim().toLowerCase() === 'getbundle';
  });
}

/**
 * hgweb's decodevaluefromheaders: `<prefix>-1`, `<prefix>-2`, ... joined until the first missing
 * one; undefined when one is repeated (an array) or the whole is longer than maxBytes.
 */
export function joinedHeaders(headers: IncomingHttpHeaders, prefix: string, maxBytes: number): string | undefined {
  let joined = '';
  for (let index = 1; ; index++) {
    const value = headers[`${prefix}-${index}`];
    if (value === undefined) return joined;
    if (typeof value !== 'string' || joined.length + value.length > maxBytes) return undefined;
    joined += value;
  }
}

/** The urlencoded arguments beside the query: httppostargs' body prefix or the X-HgArg headers. */
function extraArguments(sources: HgArgumentSources, maxBytes: number): { ok: true; text: string } | { ok: false; reason: string } {
  const postLength = sources.headers['x-hgargs-post'];
  if (postLength === undefined) {
    const text = joinedHeaders(sources.headers, 'x-hgarg', maxBytes);
    return text === undefined ? { ok: false, reason: 'malformed-arguments' } : { ok: true, text };
  }
  // hgweb ignores the X-HgArg headers when the body has the arguments: two places, one request
  if (sources.headers['x-hgarg-1'] !== undefined) return { ok: false, reason: 'ambiguous-arguments' };
  if (typeof postLength !== 'string' || !/^[1-9][0-9]{0,9}$/.test(postLength)) return { ok: false, reason: 'malformed-arguments' };
  if (!sources.body) return { ok: false, reason: 'body-not-held' };
  const length = Number(postLength);
  if (length > sources.body.length || length > maxBytes) return { ok: false, reason: 'malformed-arguments' };
  return { ok: true, text: sources.body.subarray(0, length).toString('latin1') };
}

/**
 * Every argument of a `cmd=getbundle` request but `cmd`, by name. Fails when the query names the
 * command in any other way than one plain `cmd=getbundle`, when an argument is given twice (in one
 * place or two), or when a source is not in urlencode's plain form.
 */
export function hgArguments(sources: HgArgumentSources, limits: { maxBytes: number; maxArguments: number }): HgArguments {
  const queryPairs = plainPairs(sources.query, limits.maxArguments);
  if (!queryPairs) return { ok: false, reason: 'malformed-arguments' };
  const commands = queryPairs.filter(([name]) => name.trim().toLowerCase() === 'cmd');
  const plainCommand = sources.query.split('&').includes('cmd=getbundle');
  if (commands.length !== 1 || !plainCommand) return { ok: false, reason: 'ambiguous-command' };
  const extra = extraArguments(sources, limits.maxBytes);
  if (!extra.ok) return extra;
  const extraPairs = plainPairs(extra.text, limits.maxArguments);
  if (!extraPairs) return { ok: false, reason: 'malformed-arguments' };
  const args = new Map<string, string>();
  for (const [name, value] of [...queryPairs.filter((pair) => pair !== commands[0]), ...extraPairs]) {
    if (name.trim().toLowerCase() === 'cmd') return { ok: false, reason: 'ambiguous-command' };
    if (args.has(name)) return { ok: false, reason: 'repeated-argument' };
    args.set(name, value);
  }
  return { ok: true, args };
}
