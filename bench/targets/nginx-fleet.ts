// nginx in front of a worker fleet as an operator would set it up from the Kallithea advice:
// static files from disk (alias), everything else to one upstream of all workers, round-robin or
// ip_hash, upstream keep-alive, responses streamed (proxy_buffering off: "just stream
// everything"), nginx's default timeouts. One worker process, like the single-process proxy.
// Optionally with per-client-address limits on the proxied requests (limit_req, limit_conn), as
// nginx's documentation suggests against clients that take more than their share.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { nginxPrelude } from './nginx.ts';

export type NginxBalance = 'round-robin' | 'ip_hash';

/** Per client address ($binary_remote_addr), on everything but /_static/. */
export interface NginxRateLimit {
  /** limit_req_zone rate, requests per second */
  ratePerSec: number;
  /** limit_req burst, served at once (nodelay); beyond it a request is refused */
  burst: number;
  /** limit_conn: requests being processed at once */
  connections: number;
  /** limit_req_status and limit_conn_status */
  status: number;
}

// The refusals are logged at info, below the prelude's error_log level: no log line per refused
// request, as no access log line is written for a served one.
const limitZones = (limit: NginxRateLimit) => `  limit_conn_zone $binary_remote_addr zone=addr:10m;
  limit_req_zone $binary_remote_addr zone=req:10m rate=${limit.ratePerSec}r/s;
  limit_conn_status ${limit.status};
  limit_req_status ${limit.status};
  limit_conn_log_level info;
  limit_req_log_level info;
`;
const limitRules = (limit: NginxRateLimit) => `      limit_conn addr ${limit.connections};
      limit_req zone=req burst=${limit.burst} nodelay;
`;

export function nginxFleetConfig(dir: string, port: number, upstreams: string[], balance: NginxBalance, staticRoot: string, limit?: NginxRateLimit): string {
  return `${nginxPrelude(dir, 8192, 'worker_rlimit_nofile 16384;\n')}
  include /etc/nginx/mime.types;
  keepalive_timeout 75s;
${limit ? limitZones(limit) : ''}  upstream kallithea {
    ${balance === 'ip_hash' ? 'ip_hash;' : ''}
${upstreams.map((upstream) => `    server ${upstream};`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location /_static/ {
      alias ${staticRoot}/;
      expires 1h;
    }
    location / {
      proxy_pass http://kallithea;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_request_buffering off;
${limit ? limitRules(limit) : ''}    }
  }
}
`;
}

/** Arguments for startExternalTarget (bench/lib/target.ts). */
export function nginxFleetArgs(upstreams: string[], balance: NginxBalance, staticRoot: string, limit?: NginxRateLimit) {
  return (dir: string, port: number): string[] => {
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, nginxFleetConfig(dir, port, upstreams, balance, staticRoot, limit));
    return ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', `daemon off; pid ${dir}/nginx.pid;`];
  };
}
