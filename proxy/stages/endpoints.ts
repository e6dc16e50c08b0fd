import type http from 'node:http';
import { isUnderPrefix } from '../request-target.ts';
import { sendError } from '../responses.ts';

export const HEALTH_PATH = '/healthz';

/**
 * Stage "endpoints": what the proxy answers itself. /healthz turns 503 first on a drain, so a
 * load balancer stops sending before the listener closes; internal paths (the workers' own
 * health and control) are never reachable from outside. True when the request was answered.
 */
export function serveEndpoint(path: string, res: http.ServerResponse, internalPaths: readonly string[], draining: boolean): boolean {
  if (path === HEALTH_PATH || path.startsWith(`${HEALTH_PATH}?`)) {
    serveHealth(res, draining);
    return true;
  }
  if (isUnderPrefix(path, internalPaths)) {
    sendError(res, 404, 'not found');
    return true;
  }
  return false;
}

function serveHealth(res: http.ServerResponse, draining: boolean): void {
  const body = JSON.stringify({ status: draining ? 'draining' : 'ok' });
  res.writeHead(draining ? 503 : 200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...(draining ? { connection: 'close' } : {}),
  });
  res.end(body);
}
