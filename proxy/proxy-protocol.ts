import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { normalizeAddress } from '../lib/cidr.ts';

// PROXY protocol v1 and v2 (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt), receiving
// side. Hand-written rather than proxy-protocol-js: that library parses a complete buffer only (it
// cannot tell where a header ends, so it cannot frame one arriving over TCP), ignores the v2 length
// field and does not validate v1 addresses.

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 line the spec allows, CRLF included. */
export const V1_MAX_HEADER_BYTES = 107;
/** v2 headers carry TLVs after the addresses; we skip them, but refuse to buffer more than this. */
export const V2_MAX_HEADER_BYTES = 4096;
const V2_FIXED_BYTES = 16;

export type ProxyHeaderParse =
  | { state: 'incomplete' }
  | { state: 'invalid'; reason: string }
  /** remoteAddress is absent when the header says to use the socket's own address (LOCAL, UNKNOWN, UNSPEC, UNIX). */
  | { state: 'complete'; headerBytes: number; remoteAddress?: string; remotePort?: number };

export type ProxyProtocolResult = { ok: true; remoteAddress?: string; remotePort?: number } | { ok: false; reason: string };

const INCOMPLETE: ProxyHeaderParse = { state: 'incomplete' };
const invalid = (reason: string): ProxyHeaderParse => ({ state: 'invalid', reason });

/** True while `data` is still consistent with `expected` (a prefix of it, or starting with it). */
function startsLike(data: Buffer, expected: Buffer): boolean {
  const length = Math.min(data.length, expected.length);
  return data.subarray(0, length).equals(expected.subarray(0, length));
}

/** Parses a PROXY header at the start of `data`, which holds everything received so far. Never throws. */
export function parseProxyHeader(data: Buffer): ProxyHeaderParse {
  if (data.length === 0) return INCOMPLETE;
  if (startsLike(data, V2_SIGNATURE)) return parseV2(data);
  if (startsLike(data, V1_PREFIX)) return parseV1(data);
  return invalid('connection does not start with a PROXY protocol header');
}

function parseV1(data: Buffer): ProxyHeaderParse {
  const lineEnd = data.subarray(0, V1_MAX_HEADER_BYTES).indexOf('\r\n');
  if (lineEnd < 0) {
    return data.length >= V1_MAX_HEADER_BYTES ? invalid('PROXY v1 header longer than 107 bytes') : INCOMPLETE;
  }
  const headerBytes = lineEnd + 2;
  const fields = data.toString('latin1', 0, lineEnd).split(' ');
  const family = fields[1];
  // "UNKNOWN" may be followed by anything; the receiver uses the socket's addresses.
  if (family === 'UNKNOWN') return { state: 'complete', headerBytes };
  if (family !== 'TCP4' && family !== 'TCP6') return invalid(`PROXY v1 unsupported protocol ${JSON.stringify(family)}`);
  if (fields.length !== 6) return invalid('PROXY v1 header must have 6 fields');
  const [, , source, destination, sourcePort, destinationPort] = fields;
  const ipVersion = family === 'TCP4' ? 4 : 6;
  if (net.isIP(source) !== ipVersion || net.isIP(destination) !== ipVersion) {
    return invalid(`PROXY v1 invalid ${family} address`);
  }
  const remotePort = parseV1Port(sourcePort);
  if (remotePort === undefined || parseV1Port(destinationPort) === undefined) return invalid('PROXY v1 invalid port');
  return { state: 'complete', headerBytes, remoteAddress: normalizeAddress(source), remotePort };
}

function parseV1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

const V2_COMMAND_LOCAL = 0x0;
const V2_COMMAND_PROXY = 0x1;
const V2_FAMILY_INET = 0x1;
const V2_FAMILY_INET6 = 0x2;
const V2_FAMILY_UNIX = 0x3;
const V2_TRANSPORT_STREAM = 0x1;

function parseV2(data: Buffer): ProxyHeaderParse {
  if (data.length < V2_FIXED_BYTES) return INCOMPLETE;
  const version = data[12] >> 4;
  const command = data[12] & 0x0f;
  const family = data[13] >> 4;
  const transport = data[13] & 0x0f;
  const headerBytes = V2_FIXED_BYTES + data.readUInt16BE(14);
  if (version !== 2) return invalid(`PROXY v2 unsupported version ${version}`);
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY) return invalid(`PROXY v2 unknown command ${command}`);
  if (family > V2_FAMILY_UNIX || transport > 0x2) return invalid('PROXY v2 unknown address family or transport');
  if (headerBytes > V2_MAX_HEADER_BYTES) return invalid(`PROXY v2 header of ${headerBytes} bytes exceeds ${V2_MAX_HEADER_BYTES}`);
  if (data.length < headerBytes) return INCOMPLETE;

  // LOCAL: the balancer's own connection (health checks); the address block, if any, is skipped.
  if (command === V2_COMMAND_LOCAL) return { state: 'complete', headerBytes };
  // UNSPEC, UNIX or datagram: nothing we can use as a client IP, so the socket address stands.
  if (transport !== V2_TRANSPORT_STREAM || (family !== V2_FAMILY_INET && family !== V2_FAMILY_INET6)) {
    return { state: 'complete', headerBytes };
  }
  const addressBytes = family === V2_FAMILY_INET ? 4 : 16;
  // source address, destination address, source port, destination port; TLVs may follow.
  if (headerBytes < V2_FIXED_BYTES + addressBytes * 2 + 4) return invalid('PROXY v2 address block shorter than its family needs');
  const sourceStart = V2_FIXED_BYTES;
  const source = ipaddr.fromByteArray([...data.subarray(sourceStart, sourceStart + addressBytes)]);
  const remotePort = data.readUInt16BE(sourceStart + addressBytes * 2);
  return { state: 'complete', headerBytes, remoteAddress: normalizeAddress(source.toString()), remotePort };
}

/**
 * Reads a PROXY header from a fresh connection, pushes any bytes received after it back into the
 * socket (so an http.Server given the socket sees the request from its first byte) and reports the
 * client address. Reports ok:false when the connection does not begin with a valid header, on
 * timeout, or when the peer goes away first; the caller should then destroy the socket.
 */
export function acceptProxyProtocol(
  socket: net.Socket,
  opts: { timeoutMs: number },
  done: (result: ProxyProtocolResult) => void,
): void {
  let received: Buffer = Buffer.alloc(0);
  let finished = false;

  const finish = (result: ProxyProtocolResult, rest?: Buffer) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('readable', onReadable);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onError);
    if (rest && rest.length > 0) socket.unshift(rest);
    done(result);
  };

  // Paused-mode reads ('readable' + read()), not a 'data' listener: once the 'readable' listener is
  // gone the stream is neither flowing nor paused, so the next owner's 'data' listener starts the
  // flow and receives the unshifted bytes first. http.Server needs that: it hands later bytes
  // straight from the handle to its parser, and a paused socket would strand the unshifted ones.
  const onReadable = () => {
    let chunk: Buffer | null;
    while (!finished && (chunk = socket.read()) !== null) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const parsed = parseProxyHeader(received);
      if (parsed.state === 'invalid') finish({ ok: false, reason: parsed.reason });
      if (parsed.state === 'complete') {
        const { state, headerBytes, ...address } = parsed;
        finish({ ok: true, ...address }, received.subarray(headerBytes));
      }
    }
  };
  const onEnd = () => finish({ ok: false, reason: 'connection closed before the PROXY protocol header' });
  const onError = (error: Error) =>
    finish({ ok: false, reason: `connection error before the PROXY protocol header: ${error.message}` });

  const timer = setTimeout(
    () => finish({ ok: false, reason: `no PROXY protocol header within ${opts.timeoutMs} ms` }),
    opts.timeoutMs,
  );
  socket.on('readable', onReadable);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
}
