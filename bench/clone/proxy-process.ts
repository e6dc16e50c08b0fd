// The proxy in its own process, so the clone benchmark can read its RSS apart from everything else.
// argv[2]: JSON list of worker targets ("127.0.0.1:port") for the clone and web pools.
import { startProxy } from '../../proxy/testing.ts';

const targets = JSON.parse(process.argv[2]) as string[];
// every bench client comes from 127.0.0.1, so ip-hash would put all clones on one worker
const proxy = await startProxy({ pools: { clone: targets, web: targets }, config: { lanes: { clone: { balance: 'least-outstanding' } } } });
process.send?.({ port: proxy.port });
process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
