import http from 'node:http';

/**
 * One GET on a fresh connection with a timeout that never rejects: resolves with the status and,
 * when asked for, the body as text; undefined when nothing answered in time.
 */
export function probeGet(
  target: { host: string; port: number; path: string; timeoutMs: number },
  options: { readBody?: boolean } = {},
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const request = http.get({ host: target.host, port: target.port, path: target.path, agent: false, timeout: target.timeoutMs }, (response) => {
      const status = response.statusCode ?? 0;
      if (!options.readBody) {
        response.resume();
        return resolve({ status, body: '' });
      }
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status, body }));
      response.on('error', () => resolve(undefined));
    });
    request.on('timeout', () => request.destroy(new Error('health check timed out')));
    request.on('error', () => resolve(undefined));
  });
}
