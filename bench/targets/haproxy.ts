// HAProxy as a benchmark target: one thread, HTTP mode, server-side connection reuse
// (http-reuse always, up to 64 connections), client keep-alive, X-Forwarded-For, no logging.
// Runs in the foreground (-db) with its config in a temp dir.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export function haproxyConfig(port: number, upstream: string): string {
  return `
global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 3s
  timeout client 65s
  timeout server 30s
  timeout http-keep-alive 65s
  option http-keep-alive
  option forwardfor
  http-reuse always

frontend bench
  bind 127.0.0.1:${port}
  default_backend app

backend app
  server upstream ${upstream} maxconn 64
`;
}

/** Arguments for startExternalTarget: writes the config and runs HAProxy in the foreground. */
export function haproxyArgs(upstream: string) {
  return (dir: string, port: number): string[] => {
    const conf = path.join(dir, 'haproxy.cfg');
    writeFileSync(conf, haproxyConfig(port, upstream));
    return ['-f', conf, '-db'];
  };
}
