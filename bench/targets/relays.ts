// Hosts the throttling relays of one benchmark phase in their own process, so that pacing and
// piping clone bytes do not steal the load generator's event loop.
// Usage: relays.ts '<JSON RelaySpec[]>'. Prints `RELAYS <JSON port list>`, then `LISTENING <first port>`.
import { announce } from '../lib/announce.ts';
import { startRelay, type RelaySpec } from '../lib/throttle-relay.ts';

const specs = JSON.parse(process.argv[2] ?? '[]') as RelaySpec[];
if (specs.length === 0) throw new Error("usage: relays.ts '<JSON RelaySpec[]>'");
const relays = await Promise.all(specs.map(startRelay));
process.stdout.write(`RELAYS ${JSON.stringify(relays.map((relay) => relay.port))}\n`);
announce(relays[0].port, () => Promise.all(relays.map((relay) => relay.close())));
