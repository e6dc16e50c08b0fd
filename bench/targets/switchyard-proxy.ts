// Switchyard in its own process in front of static targets (proxy/testing.ts startProxy).
// Usage: switchyard-proxy.ts [--concurrency N] <host:port>... Prints `LISTENING <port>`.
// The "page" class keeps client connections open (maxRequestsPerSocket 0), as nginx and HAProxy
// are configured to in the benchmark; everything else is the product's default.
import { parseArgs } from 'node:util';
import { startProxy } from '../../proxy/testing.ts';
import { announce } from '../lib/announce.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { concurrency: { type: 'string', default: '1' } },
});
if (positionals.length === 0) throw new Error('usage: switchyard-proxy.ts [--concurrency N] <host:port>...');

const started = await startProxy({
  pools: { web: positionals },
  config: {
    proxy: {
      debugHeaders: false,
      healthCheck: { intervalMs: 2000 },
      clients: { page: { maxRequestsPerSocket: 0 } },
    },
    pools: { web: { concurrency: Number(values.concurrency), queue: { max: 1000 } } },
  },
});
announce(started.port, () => started.close());
