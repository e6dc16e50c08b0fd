import type http from 'node:http';
import type { ProxyConfig } from '../../lib/config.ts';
import type { ErrorStatus } from '../responses.ts';
import { parseRequestTarget } from '../request-target.ts';

/** A request the proxy answers itself, with this status, and on a connection that then closes. */
export interface Refusal {
  status: ErrorStatus;
  reason: string;
}

/** What validation learned: the request's canonical path and whether it asked for 100 Continue. */
export interface ValidRequest {
  path: string;
  /** an Expect: 100-continue the proxy answers before it reads the body */
  expectsContinue: boolean;
}

// RFC 3986 host: reg-name or IP literal, optional port.
const VALID_HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(:\d{1,5})?$/;

/**
 * Stage "validate": what Node's parser let through but the proxy does not (sizes past the
 * configured limits, a target that is not a clean path, a missing or invalid Host, an unknown
 * Expect). Normalises the request in place: req.url becomes the canonical path, and an
 * absolute-form target's authority becomes the Host.
 */
export function validateRequest(req: http.IncomingMessage, limits: ProxyConfig['limits']): Refusal | ValidRequest {
  const url = req.url ?? '/';
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so most URLs need no byte count
  if (url.length * 3 > limits.maxUrlBytes && Buffer.byteLength(url) > limits.maxUrlBytes) return { status: 414, reason: 'URL too long' };
  if (headerBytes(req) > limits.maxHeaderBytes) return { status: 431, reason: 'request headers too large' };
  const target = parseRequestTarget(url);
  if (!target.ok) return { status: 400, reason: target.reason };
  req.url = target.path;
  if (target.host !== undefined) req.headers.host = target.host;
  const host = req.headers.host;
  if (host === undefined ? req.httpVersion === '1.1' : !VALID_HOST.test(host)) return { status: 400, reason: 'missing or invalid Host header' };
  const expect = req.headers.expect?.toLowerCase();
  if (expect !== undefined && expect !== '100-continue') return { status: 417, reason: 'unsupported expectation' };
  // An HTTP/1.1 client waits for this before it sends the body (RFC 9110 10.1.1: not for HTTP/1.0).
  return { path: target.path, expectsContinue: expect !== undefined && req.httpVersion === '1.1' };
}

export function isRefusal(result: Refusal | ValidRequest): result is Refusal {
  return 'status' in result;
}

/**
 * Only the configured Upgrade protocols (WebSocket) reach a worker, and only a GET may ask; an
 * offer of anything else is answered as a plain request. An upgrade offer with a body is refused:
 * Node's parser stops at the offer, so the body would be read as the tunnel's first bytes.
 */
export function acceptedUpgrade(req: http.IncomingMessage, protocols: ReadonlySet<string>, hasBody: boolean): Refusal | boolean {
  if (hasBody) return { status: 400, reason: 'an upgrade request cannot carry a body' };
  const asked = req.headers.upgrade?.trim().toLowerCase();
  return req.method === 'GET' && asked !== undefined && protocols.has(asked);
}

function headerBytes(req: http.IncomingMessage): number {
  let total = 0;
  for (const part of req.rawHeaders) total += part.length + 2;
  return total;
}
