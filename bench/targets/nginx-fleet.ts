// nginx in front of a worker fleet as an operator would set it up from the Kallithea advice:
// static files from disk (alias), everything else to one upstream of all workers, round-robin or
// ip_hash, upstream keep-alive, responses streamed (proxy_buffering off: "just stream
// everything"), nginx's default timeouts. One worker process, like the single-process proxy.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { nginxPrelude } from './nginx.ts';

export type NginxBalance = 'round-robin' | 'ip_hash';

export function nginxFleetConfig(dir: string, port: number, upstreams: string[], balance: NginxBalance, staticRoot: string): string {
  return `${nginxPrelude(dir, 8192, 'worker_rlimit_nofile 16384;\n')}
  include /etc/nginx/mime.types;
  keepalive_timeout 75s;
  upstream kallithea {
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
    }
  }
}
`;
}

/** Arguments for startExternalTarget (bench/lib/target.ts). */
export function nginxFleetArgs(upstreams: string[], balance: NginxBalance, staticRoot: string) {
  return (dir: string, port: number): string[] => {
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, nginxFleetConfig(dir, port, upstreams, balance, staticRoot));
    return ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', `daemon off; pid ${dir}/nginx.pid;`];
  };
}
