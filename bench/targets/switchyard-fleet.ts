// Switchyard in its own process in front of a benchmark fleet (proxy/testing.ts startProxy), so
// its RSS and file descriptors can be read apart from the load generator.
// Usage: switchyard-fleet.ts '<JSON { pools: { web: [host:port...], ... }, config: {...} }>'.
// Prints `LISTENING <port>`.
import { startProxy } from '../../proxy/testing.ts';
import { announce } from '../lib/announce.ts';

const { pools, config } = JSON.parse(process.argv[2] ?? '{}') as { pools: Record<string, string[]>; config?: Record<string, unknown> };
if (!pools) throw new Error("usage: switchyard-fleet.ts '<JSON { pools, config }>'");
const started = await startProxy({ pools, config });
announce(started.port, () => started.close());
