import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { V2_SIGNATURE } from './proxy-protocol.ts';

// Sending side of the PROXY protocol, for tests and benchmarks that play the load balancer.
// Unlike the parser these throw on bad input: a caller passing a bad address has a bug.

export interface ProxiedConnection {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

function ipVersionOf(connection: ProxiedConnection): 4 | 6 {
  const version = net.isIP(connection.sourceAddress);
  if (version === 0 || version !== net.isIP(connection.destinationAddress)) {
    throw new Error(`PROXY header needs two addresses of one family: ${connection.sourceAddress}, ${connection.destinationAddress}`);
  }
  return version as 4 | 6;
}

/** `PROXY TCP4 src dst sport dport\r\n`, or `PROXY UNKNOWN\r\n`. */
export function encodeProxyV1(connection: ProxiedConnection | 'UNKNOWN'): Buffer {
  if (connection === 'UNKNOWN') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const { sourceAddress, destinationAddress, sourcePort, destinationPort } = connection;
  const family = ipVersionOf(connection) === 4 ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${family} ${sourceAddress} ${destinationAddress} ${sourcePort} ${destinationPort}\r\n`, 'latin1');
}

/** A v2 PROXY (TCP over IPv4/IPv6) or LOCAL header; `tlvs` is appended verbatim after the addresses. */
export function encodeProxyV2(connection: ProxiedConnection | 'LOCAL', options: { tlvs?: Buffer } = {}): Buffer {
  const tlvs = options.tlvs ?? Buffer.alloc(0);
  if (connection === 'LOCAL') return Buffer.concat([v2Preamble(0x20, 0x00, tlvs.length), tlvs]);

  const family = ipVersionOf(connection) === 4 ? 0x11 : 0x21;
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(connection.sourcePort, 0);
  ports.writeUInt16BE(connection.destinationPort, 2);
  const addresses = Buffer.concat([
    Buffer.from(ipaddr.parse(connection.sourceAddress).toByteArray()),
    Buffer.from(ipaddr.parse(connection.destinationAddress).toByteArray()),
    ports,
    tlvs,
  ]);
  return Buffer.concat([v2Preamble(0x21, family, addresses.length), addresses]);
}

function v2Preamble(versionAndCommand: number, familyAndTransport: number, length: number): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = versionAndCommand;
  fixed[1] = familyAndTransport;
  fixed.writeUInt16BE(length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed]);
}
