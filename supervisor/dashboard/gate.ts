import type { FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler } from 'fastify';
import type { Access, Verdict } from './access.ts';

const verdicts = new WeakMap<FastifyRequest, Verdict & { ok: true }>();

/** How the gate let this request in (undefined on public routes). */
export function verdictOf(request: FastifyRequest): (Verdict & { ok: true }) | undefined {
  return verdicts.get(request);
}

function wantsHtml(request: FastifyRequest): boolean {
  return request.method === 'GET' && (request.headers.accept ?? '').includes('text/html');
}

/**
 * The one authentication gate in front of every route but `publicRoutes` (matched on the route
 * pattern, so a query string cannot sneak past): admin token or session, and the session's CSRF
 * token on anything but GET/HEAD. A browser without a session is sent to the login page.
 */
export function authGate(access: Access, publicRoutes: ReadonlySet<string>): onRequestHookHandler {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url;
    if (route !== undefined && publicRoutes.has(route)) return;
    const verdict = access.authenticate(request.headers, request.ip);
    if (!verdict.ok) {
      if (verdict.status === 429) return reply.code(429).header('retry-after', String(verdict.retryAfterSec)).send({ error: 'too many wrong tokens; try again later' });
      if (wantsHtml(request)) return reply.redirect('/login', 303);
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'admin token required' });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD' && !access.csrfValid(verdict, request.headers)) {
      return reply.code(403).send({ error: 'CSRF token missing or wrong (X-CSRF-Token)' });
    }
    verdicts.set(request, verdict);
  };
}

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Same headers on every answer: no framing (the page has action buttons), no sniffing, no caching of fleet data. */
export const securityHeaders: onSendHookHandler = async (request, reply, payload) => {
  reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
  reply.header('x-frame-options', 'DENY');
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'same-origin'); // 'no-referrer' would make browsers send "Origin: null" on our own forms
  reply.header('cross-origin-opener-policy', 'same-origin');
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  return payload;
};
