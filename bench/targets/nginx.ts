// nginx as a benchmark target: one worker process (comparable to single-process Node), upstream
// keep-alive pool of 64, HTTP/1.1 to the upstream, no access log, client keep-alive unlimited
// enough for a run. Runs in the foreground with everything under a temp prefix.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What every nginx target of the benchmarks shares: one worker process, logs and temp paths under
 * the target's own dir, no access log. Callers continue inside the open `http {` block.
 */
export function nginxPrelude(dir: string, workerConnections: number, mainExtra = ''): string {
  return `
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
${mainExtra}error_log ${dir}/error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;`;
}

export function nginxConfig(dir: string, port: number, upstream: string): string {
  return `${nginxPrelude(dir, 4096)}
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream app {
    server ${upstream};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`;
}

/** Arguments for startExternalTarget: writes the config and runs nginx in the foreground. */
export function nginxArgs(upstream: string) {
  return (dir: string, port: number): string[] => {
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig(dir, port, upstream));
    return ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', `daemon off; pid ${dir}/nginx.pid;`];
  };
}
