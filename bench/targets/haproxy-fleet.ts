// HAProxy in front of a worker fleet as an operator would set it up from the Kallithea advice:
// one backend of all workers, roundrobin or source (IP hash), client keep-alive, X-Forwarded-For,
// static files answered by HAProxy itself (one `http-request return ... file` per file: HAProxy
// has no directory serving), no per-server maxconn (so no queue in HAProxy). One thread.
// Optionally with a per-client-address rate and concurrency limit in a stick table, as HAProxy's
// documentation suggests against clients that take more than their share.
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mime from 'mime-types';

export type HaproxyBalance = 'roundrobin' | 'source';

/** Per client address (src), on everything but /_static/ (answered before the rules). */
export interface HaproxyRateLimit {
  /** refused above this many requests in windowSec (sc_http_req_rate) */
  requests: number;
  windowSec: number;
  /** refused above this many requests in progress at once (sc_conn_cur of the tracking streams) */
  concurrent: number;
  /** deny_status */
  status: number;
}

const limitRules = (limit: HaproxyRateLimit) => `  stick-table type ip size 100k expire 30s store http_req_rate(${limit.windowSec}s),conn_cur
  http-request track-sc0 src
  http-request deny deny_status ${limit.status} if { sc_http_req_rate(0) gt ${limit.requests} }
  http-request deny deny_status ${limit.status} if { sc_conn_cur(0) gt ${limit.concurrent} }
`;

function staticRules(staticRoot: string): string {
  return readdirSync(staticRoot)
    .map((name) => {
      const type = mime.lookup(name) || 'application/octet-stream';
      return `  http-request return status 200 content-type "${type}" file ${path.join(staticRoot, name)} hdr cache-control "max-age=3600" if { path /_static/${name} }`;
    })
    .join('\n');
}

export function haproxyFleetConfig(port: number, upstreams: string[], balance: HaproxyBalance, staticRoot: string, limit?: HaproxyRateLimit): string {
  return `
global
  nbthread 1
  maxconn 8000

defaults
  mode http
  timeout connect 5s
  timeout client 75s
  timeout server 60s
  timeout http-keep-alive 75s
  timeout http-request 10s
  option http-keep-alive
  option forwardfor

frontend kallithea
  bind 127.0.0.1:${port}
${staticRules(staticRoot)}
  http-request return status 404 if { path_beg /_static/ }
${limit ? limitRules(limit) : ''}  default_backend workers

backend workers
  balance ${balance}
${upstreams.map((upstream, index) => `  server w${index} ${upstream}`).join('\n')}
`;
}

/** Arguments for startExternalTarget (bench/lib/target.ts). */
export function haproxyFleetArgs(upstreams: string[], balance: HaproxyBalance, staticRoot: string, limit?: HaproxyRateLimit) {
  return (dir: string, port: number): string[] => {
    const conf = path.join(dir, 'haproxy.cfg');
    writeFileSync(conf, haproxyFleetConfig(port, upstreams, balance, staticRoot, limit));
    return ['-f', conf, '-db'];
  };
}
