import type http from 'node:http';
import type { Socket } from 'node:net';
import { type CidrSet, normalizeAddress } from '../../lib/cidr.ts';
import type { ProxyConfig } from '../../lib/config.ts';
import type { Logger } from '../../lib/log.ts';
import type { ThrottledLog } from '../../lib/throttled-log.ts';
import { setConnectionClientAddress } from '../client-address.ts';
import type { ConnectionTracker } from '../connections.ts';
import { containSocket } from '../containment.ts';
import { acceptProxyProtocol } from '../proxy-protocol.ts';
import { rejectSocket } from '../responses.ts';

export interface ConnectionGateOptions {
  /** read as each connection arrives: a reload may change them */
  settings: () => { config: ProxyConfig; trusted: CidrSet };
  connections: ConnectionTracker;
  log: Logger;
  /** refusals any client can cause over and over: logged once a minute with a count */
  refusedLog: ThrottledLog;
  /** the proxy is closing: new connections are dropped */
  closing: () => boolean;
}

/**
 * Stage "admit", per connection, before Node's HTTP parser sees a byte: a PROXY protocol header
 * from a trusted peer names the client; the per-address and total connection limits apply.
 */
export function installConnectionGate(server: http.Server, options: ConnectionGateOptions): void {
  const [parseHttp] = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const { connections, log } = options;
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {}); // resets from clients are normal; the parser reports the rest
    containSocket(log, socket, () => onConnection(socket));
  });

  function onConnection(socket: Socket): void {
    const { config, trusted } = options.settings();
    const peer = normalizeAddress(socket.remoteAddress ?? '');
    const trustedPeer = trusted.has(peer);
    if (!trustedPeer || !config.proxyProtocol) return admit(socket, trusted, peer, trustedPeer);
    acceptProxyProtocol(socket, { timeoutMs: config.limits.headersTimeoutMs }, (result) =>
      containSocket(log, socket, () => {
        if (!result.ok) {
          log.warn({ peer, reason: result.reason }, 'bad PROXY protocol header');
          socket.destroy();
          return;
        }
        if (result.remoteAddress) {
          setConnectionClientAddress(socket, normalizeAddress(result.remoteAddress));
          admit(socket, trusted, normalizeAddress(result.remoteAddress), false);
        } else {
          admit(socket, trusted, peer, true);
        }
      }),
    );
  }

  function admit(socket: Socket, trusted: CidrSet, clientAddress: string, exempt: boolean): void {
    if (options.closing()) return void socket.destroy();
    if (!connections.admit(socket, clientAddress, exempt, trusted.has(clientAddress))) {
      options.refusedLog.write({ client: clientAddress, connections: connections.size }, 'connection refused: too many from its address, or in all');
      return rejectSocket(socket, 503, 'too many connections', 'Retry-After: 1\r\n');
    }
    parseHttp.call(server, socket);
  }
}
