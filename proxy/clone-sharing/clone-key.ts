// The clone-sharing key of a request: requests with the same key get the same answer from a worker,
// so one generation can serve them all. Correct before fast: whatever could make two answers
// differ is in the key or stops sharing (a bypass), and anything not understood is a bypass.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { decodedBody } from './decoded-body.ts';
import { readGitFetch } from './git-fetch.ts';
import { namesGetbundle } from './hg-args.ts';
import { readHgGetbundle } from './hg-getbundle.ts';

export type CloneVcs = 'git' | 'hg';

export type CloneKey =
  /** identical requests share one generation; retain: a finished one may also serve later identical requests (TTL) */
  | { vcs: CloneVcs; share: true; key: string; retain: boolean }
  /** a clone-protocol request that must go to a worker on its own (counted as result "bypass") */
  | { vcs: CloneVcs; share: false; reason: string };

export interface CloneRequest {
  method: string;
  /** the decoded path without the query, e.g. /demo-git/git-upload-pack or /demo-hg */
  path: string;
  /** the raw query string without '?', '' if none */
  query: string;
  headers: IncomingHttpHeaders;
  /** the whole request body when the proxy holds it in memory; undefined when it has none or does not hold it */
  body: Buffer | undefined;
}

type ShapeValue = string | number | readonly ShapeValue[];

/** What a protocol reader made of a request: its normal form, or why it is not shared. */
export type RequestReading = { share: true; retain: boolean; shape: Record<string, ShapeValue> } | { share: false; reason: string };

const GIT_UPLOAD_PACK = '/git-upload-pack';
const GIT_REQUEST_TYPE = 'application/x-git-upload-pack-request';

/** Bounds the work on one body: git sends one line per wanted ref. */
const MAX_LINES = 100_000;

const digest = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

/** A request that, with the body it declares, the proxy does not hold whole. */
function bodyNotHeld(request: CloneRequest): boolean {
  return request.body === undefined && (request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0);
}

function readGit(request: CloneRequest, maxDecodedBytes: number): RequestReading {
  if (!request.body) return { share: false, reason: bodyNotHeld(request) ? 'body-not-held' : 'no-body' };
  const decoded = decodedBody(request.body, request.headers['content-encoding'], maxDecodedBytes);
  if (!decoded.ok) return { share: false, reason: decoded.reason };
  const protocol = request.headers['git-protocol'];
  if (Array.isArray(protocol)) return { share: false, reason: 'malformed-protocol' };
  const reading = readGitFetch(decoded.body, protocol, MAX_LINES);
  return reading.share ? { ...reading, shape: { ...reading.shape, gitProtocol: protocol ?? '' } } : reading;
}

function readHg(request: CloneRequest, maxDecodedBytes: number): RequestReading {
  if (bodyNotHeld(request)) return { share: false, reason: 'body-not-held' };
  const reading = readHgGetbundle(request, { maxBytes: maxDecodedBytes, maxArguments: MAX_LINES });
  // hgweb reads only the httppostargs prefix of a getbundle body; the rest is in the key all the same
  return reading.share ? { ...reading, shape: { ...reading.shape, body: request.body ? digest(request.body) : '' } } : reading;
}

/** Which clone protocol's data phase a request is in, by method, path, query and content type. */
function cloneVcsOf(request: CloneRequest): CloneVcs | undefined {
  if (request.method === 'POST' && request.path.endsWith(GIT_UPLOAD_PACK) && request.path.length > GIT_UPLOAD_PACK.length) {
    return request.headers['content-type'] === GIT_REQUEST_TYPE ? 'git' : undefined;
  }
  if ((request.method === 'GET' || request.method === 'POST') && namesGetbundle(request.query)) return 'hg';
  return undefined;
}

/** What every key covers besides the request's normal form: where it goes and who asks. */
function identity(request: CloneRequest, vcs: CloneVcs): Record<string, ShapeValue> {
  const header = (name: string) => JSON.stringify(request.headers[name] ?? null);
  return {
    vcs,
    method: request.method,
    host: String(request.headers.host ?? '').toLowerCase(),
    path: request.path,
    query: request.query,
    // a worker may compress its answer for a client that accepts it; one that does not must not get it
    acceptEncoding: String(request.headers['accept-encoding'] ?? '').toLowerCase(),
    // identical credentials share, different ones never do; the key never holds them in clear
    credentials: digest(`${header('authorization')}\n${header('cookie')}`),
  };
}

function keyOf(request: CloneRequest, limits: { maxDecodedBytes: number }): CloneKey | undefined {
  const vcs = cloneVcsOf(request);
  if (!vcs) return undefined;
  // a range of a clone answer is another answer, which neither git nor hgweb serves
  if (request.headers.range !== undefined) return { vcs, share: false, reason: 'range' };
  const reading = vcs === 'git' ? readGit(request, limits.maxDecodedBytes) : readHg(request, limits.maxDecodedBytes);
  if (!reading.share) return { vcs, share: false, reason: reading.reason };
  const canonical = JSON.stringify(['switchyard clone key 1', identity(request, vcs), reading.shape]);
  return { vcs, share: true, key: digest(canonical), retain: reading.retain };
}

/** undefined: not a request of the clone protocols' data phase at all (not counted). Never throws on any input. */
export function cloneKeyOf(request: CloneRequest, limits: { maxDecodedBytes: number }): CloneKey | undefined {
  try {
    return keyOf(request, limits);
  } catch {
    // a reader's bug must not fail the request: it goes to a worker as it would without sharing
    return undefined;
  }
}
