import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

/**
 * Responses larger than this end their connection (`Connection: close`) instead of keeping it
 * alive for the next request.
 *
 * Why: the worker's keep-alive clock starts when its kernel has taken the last byte of a
 * response, not when the peer has read it. A proxy that paces a slow client reads a large
 * response's tail out of the loopback socket buffers (several MB) seconds later, and reuses the
 * connection the moment it has: by then the worker may have timed it out as idle and closed it,
 * so the next request (queued behind the clone) dies unanswered and the proxy answers 502. That
 * was the "2 of 30 stampede clones failed with 502" of docs/benchmarks.md, for git as for hg. A
 * response that fits this size is read by the proxy at once (it fits its response window, 256 KiB
 * by default), so both ends see the connection go idle at the same moment and keep-alive stays
 * safe for pages. Opening a new loopback connection for a large response costs far less than
 * the response itself.
 */
export const REUSABLE_RESPONSE_MAX_BYTES = 64 * 1024;

/** The size a Content-Length header value declares; undefined when there is none (a stream). */
function declaredBytes(contentLength: unknown): number | undefined {
  if (contentLength === undefined || contentLength === null || contentLength === '') return undefined;
  const bytes = Number(contentLength);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

function tooLargeToKeep(bytes: number | undefined): boolean {
  return bytes === undefined || bytes > REUSABLE_RESPONSE_MAX_BYTES;
}

/**
 * Says `Connection: close` unless the response is known to be small. Call once its headers are
 * set and before they are written (CGI responses, which fastify does not see).
 */
export function closeConnectionUnlessSmall(res: ServerResponse): void {
  if (tooLargeToKeep(declaredBytes(res.getHeader('content-length')))) res.setHeader('connection', 'close');
}

/** The same for every reply fastify sends. */
export function installConnectionReuseHook(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    const bytes =
      payload === null || payload === undefined
        ? 0
        : typeof payload === 'string' || Buffer.isBuffer(payload)
          ? Buffer.byteLength(payload)
          : declaredBytes(reply.getHeader('content-length'));
    if (tooLargeToKeep(bytes)) reply.header('connection', 'close');
    return payload;
  });
}
