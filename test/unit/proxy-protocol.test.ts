import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectionClientAddress, setConnectionClientAddress } from '../../proxy/client-address.ts';
import {
  acceptProxyProtocol,
  parseProxyHeader,
  type ProxyProtocolResult,
  V1_MAX_HEADER_BYTES,
  V2_MAX_HEADER_BYTES,
  V2_SIGNATURE,
} from '../../proxy/proxy-protocol.ts';
import { encodeProxyV1, encodeProxyV2, type ProxiedConnection } from '../../proxy/proxy-protocol-encode.ts';
import { SeededRandom } from '../../lib/seeded-random.ts';

const TCP4: ProxiedConnection = { sourceAddress: '203.0.113.7', sourcePort: 51234, destinationAddress: '192.0.2.1', destinationPort: 443 };
const TCP6: ProxiedConnection = { sourceAddress: '2001:db8::7', sourcePort: 40000, destinationAddress: '2001:db8::1', destinationPort: 80 };
const GET = (path: string, extra = '') => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`);
const LAST_GET = (path: string) => GET(path, 'Connection: close\r\n');
const NOT_PROXY = 'connection does not start with a PROXY protocol header';

// ---- the parser, byte by byte ----

test('v1 TCP4 and TCP6 headers give the source address and port', () => {
  const v4 = encodeProxyV1(TCP4);
  assert.deepEqual(parseProxyHeader(v4), { state: 'complete', headerBytes: v4.length, remoteAddress: '203.0.113.7', remotePort: 51234 });
  const v6 = encodeProxyV1(TCP6);
  assert.deepEqual(parseProxyHeader(v6), { state: 'complete', headerBytes: v6.length, remoteAddress: '2001:db8::7', remotePort: 40000 });
});

test('v1 IPv4-mapped IPv6 source is folded to IPv4', () => {
  const header = encodeProxyV1({ ...TCP6, sourceAddress: '::ffff:198.51.100.3', destinationAddress: '::ffff:192.0.2.1' });
  const parsed = parseProxyHeader(header);
  assert.equal(parsed.state === 'complete' && parsed.remoteAddress, '198.51.100.3');
});

test('v1 UNKNOWN is complete without an address', () => {
  assert.deepEqual(parseProxyHeader(encodeProxyV1('UNKNOWN')), { state: 'complete', headerBytes: 15 });
  const withJunk = Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n');
  assert.deepEqual(parseProxyHeader(withJunk), { state: 'complete', headerBytes: withJunk.length });
});

test('the parser only counts the header: following bytes are left alone', () => {
  const header = encodeProxyV1(TCP4);
  const parsed = parseProxyHeader(Buffer.concat([header, GET('/')]));
  assert.equal(parsed.state === 'complete' && parsed.headerBytes, header.length);
});

// The worst case the spec sizes its 107-byte limit by.
const LONGEST_V1 = Buffer.from(`PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`);

test('the longest v1 header the spec allows fits the limit exactly', () => {
  assert.equal(LONGEST_V1.length, V1_MAX_HEADER_BYTES);
  assert.deepEqual(parseProxyHeader(LONGEST_V1), { state: 'complete', headerBytes: V1_MAX_HEADER_BYTES });
  const v6 = encodeProxyV1({ ...TCP6, sourceAddress: 'ffff:'.repeat(7) + 'ffff', destinationAddress: '::1', sourcePort: 65535 });
  assert.equal(parseProxyHeader(v6).state, 'complete');
});

test('every strict prefix of a valid header is incomplete', () => {
  const headers = [
    encodeProxyV1(TCP4),
    encodeProxyV1(TCP6),
    LONGEST_V1,
    encodeProxyV2(TCP4),
    encodeProxyV2(TCP6),
    encodeProxyV2('LOCAL'),
    encodeProxyV2(TCP4, { tlvs: Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]) }),
  ];
  for (const header of headers) {
    for (let length = 1; length < header.length; length++) {
      assert.deepEqual(parseProxyHeader(header.subarray(0, length)), { state: 'incomplete' }, `${length}/${header.length}`);
    }
    assert.equal(parseProxyHeader(header).state, 'complete');
  }
});

test('malformed v1 headers are refused, each for its reason', () => {
  const bad: Array<[string, string]> = [
    ['PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n', 'PROXY v1 unsupported protocol "UDP4"'],
    ['PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n', 'PROXY v1 invalid TCP4 address'],
    ['PROXY TCP6 203.0.113.7 192.0.2.1 1 2\r\n', 'PROXY v1 invalid TCP6 address'],
    ['PROXY TCP4 203.0.113.999 192.0.2.1 1 2\r\n', 'PROXY v1 invalid TCP4 address'],
    ['PROXY TCP4 127.1 192.0.2.1 1 2\r\n', 'PROXY v1 invalid TCP4 address'],
    ['PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n', 'PROXY v1 invalid port'],
    ['PROXY TCP4 203.0.113.7 192.0.2.1 080 2\r\n', 'PROXY v1 invalid port'],
    ['PROXY TCP4 203.0.113.7 192.0.2.1 -1 2\r\n', 'PROXY v1 invalid port'],
    ['PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n', 'PROXY v1 header must have 6 fields'],
    ['PROXY TCP4 203.0.113.7 192.0.2.1 1 2 3\r\n', 'PROXY v1 header must have 6 fields'],
    ['PROXY TCP4  203.0.113.7 192.0.2.1 1 2\r\n', 'PROXY v1 header must have 6 fields'],
    ['PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n\r\n', 'PROXY v1 invalid port'],
    ['PROXY\r\n', NOT_PROXY],
    ['proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n', NOT_PROXY],
  ];
  for (const [text, reason] of bad) {
    assert.deepEqual(parseProxyHeader(Buffer.from(text)), { state: 'invalid', reason }, JSON.stringify(text));
  }
});

test('a v1 line without CRLF within 107 bytes is invalid; shorter is incomplete', () => {
  const long = Buffer.from('PROXY TCP6 ' + 'a'.repeat(200));
  assert.equal(parseProxyHeader(long.subarray(0, V1_MAX_HEADER_BYTES - 1)).state, 'incomplete');
  const parsed = parseProxyHeader(long.subarray(0, V1_MAX_HEADER_BYTES));
  assert.equal(parsed.state, 'invalid');
  assert.match(parsed.state === 'invalid' ? parsed.reason : '', /107/);
});

test('v2 PROXY TCP4 and TCP6 headers give the source address and port', () => {
  const v4 = encodeProxyV2(TCP4);
  assert.equal(v4.length, 16 + 12);
  assert.deepEqual(parseProxyHeader(v4), { state: 'complete', headerBytes: 28, remoteAddress: '203.0.113.7', remotePort: 51234 });
  const v6 = encodeProxyV2(TCP6);
  assert.equal(v6.length, 16 + 36);
  assert.deepEqual(parseProxyHeader(v6), { state: 'complete', headerBytes: 52, remoteAddress: '2001:db8::7', remotePort: 40000 });
  const mapped = encodeProxyV2({ ...TCP6, sourceAddress: '::ffff:198.51.100.3', destinationAddress: '::1' });
  assert.equal((parseProxyHeader(mapped) as { remoteAddress?: string }).remoteAddress, '198.51.100.3');
});

test('v2 TLVs are skipped: the header ends after them', () => {
  const tlvs = Buffer.from([0x02, 0x00, 0x05, ...Buffer.from('host1'), 0x04, 0x00, 0x00]);
  const header = encodeProxyV2(TCP4, { tlvs });
  assert.deepEqual(parseProxyHeader(Buffer.concat([header, GET('/')])), {
    state: 'complete',
    headerBytes: 28 + tlvs.length,
    remoteAddress: '203.0.113.7',
    remotePort: 51234,
  });
});

test('v2 LOCAL, UNSPEC and UNIX mean: use the socket address', () => {
  assert.deepEqual(parseProxyHeader(encodeProxyV2('LOCAL')), { state: 'complete', headerBytes: 16 });
  // LOCAL with an address block: the block is skipped, not believed.
  const localWithAddresses = encodeProxyV2(TCP4);
  localWithAddresses[12] = 0x20;
  assert.deepEqual(parseProxyHeader(localWithAddresses), { state: 'complete', headerBytes: 28 });
  const unspec = v2Raw(0x21, 0x00, Buffer.alloc(0));
  assert.deepEqual(parseProxyHeader(unspec), { state: 'complete', headerBytes: 16 });
  const unix = v2Raw(0x21, 0x31, Buffer.alloc(216));
  assert.deepEqual(parseProxyHeader(unix), { state: 'complete', headerBytes: 16 + 216 });
});

/** A v2 header with arbitrary version/command, family/transport and body. */
function v2Raw(versionAndCommand: number, familyAndTransport: number, body: Buffer, length = body.length): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = versionAndCommand;
  fixed[1] = familyAndTransport;
  fixed.writeUInt16BE(length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, body]);
}

test('malformed v2 headers are refused, each for its reason', () => {
  const FAMILY = 'PROXY v2 unknown address family or transport';
  const SHORT = 'PROXY v2 address block shorter than its family needs';
  const cases: Array<[string, Buffer, string]> = [
    ['version 1', v2Raw(0x11, 0x11, Buffer.alloc(12)), 'PROXY v2 unsupported version 1'],
    ['version 3', v2Raw(0x31, 0x11, Buffer.alloc(12)), 'PROXY v2 unsupported version 3'],
    ['command 2', v2Raw(0x22, 0x11, Buffer.alloc(12)), 'PROXY v2 unknown command 2'],
    ['family 4', v2Raw(0x21, 0x41, Buffer.alloc(12)), FAMILY],
    ['transport 3', v2Raw(0x21, 0x13, Buffer.alloc(12)), FAMILY],
    ['INET block too short', v2Raw(0x21, 0x11, Buffer.alloc(11)), SHORT],
    ['INET6 block too short', v2Raw(0x21, 0x21, Buffer.alloc(35)), SHORT],
  ];
  for (const [name, header, reason] of cases) {
    assert.deepEqual(parseProxyHeader(header), { state: 'invalid', reason }, name);
  }
});

test('an oversized v2 header is invalid as soon as its length is known', () => {
  const fits = v2Raw(0x21, 0x11, Buffer.alloc(0), V2_MAX_HEADER_BYTES - 16);
  assert.equal(parseProxyHeader(fits).state, 'incomplete');
  const tooBig = v2Raw(0x21, 0x11, Buffer.alloc(0), V2_MAX_HEADER_BYTES - 15);
  assert.equal(parseProxyHeader(tooBig).state, 'invalid');
  assert.equal(parseProxyHeader(v2Raw(0x21, 0x11, Buffer.alloc(0), 0xffff)).state, 'invalid');
});

test('anything else is invalid from the first differing byte', () => {
  for (const text of ['GET / HTTP/1.1\r\n', '\x16\x03\x01', 'PROXX', 'PROXY\t', '\r\n\r\n\0\r\nQUIT!']) {
    assert.deepEqual(parseProxyHeader(Buffer.from(text, 'latin1')), { state: 'invalid', reason: NOT_PROXY }, JSON.stringify(text));
  }
  assert.equal(parseProxyHeader(Buffer.from('PROX')).state, 'incomplete');
  assert.equal(parseProxyHeader(Buffer.from('\r\n\r\n')).state, 'incomplete');
  assert.equal(parseProxyHeader(Buffer.alloc(0)).state, 'incomplete');
});

// ---- generated cases from a seeded PRNG: the same inputs on every run ----

const SEED = 20261205;

function randomIPv4(random: SeededRandom): string {
  return Array.from({ length: 4 }, () => random.int(256)).join('.');
}

/** Eight groups, a third of them zero so that runs get compressed, written plain, zero-padded or in capitals. */
function randomIPv6(random: SeededRandom): string {
  const groups = [0x2001, ...Array.from({ length: 7 }, () => (random.int(3) === 0 ? 0 : random.int(0x10000)))];
  const style = random.int(3);
  return groups.map((group) => (style === 0 ? group.toString(16) : style === 1 ? group.toString(16).padStart(4, '0') : group.toString(16).toUpperCase())).join(':');
}

/** The textbook (RFC 5952) form of an IPv6 address, as the WHATWG URL parser writes it. */
function canonicalIPv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** A connection over IPv4, IPv6 or IPv4-mapped IPv6, and the client address the parser must report for it. */
function randomConnection(random: SeededRandom): { connection: ProxiedConnection; remoteAddress: string } {
  const ports = { sourcePort: random.int(65536), destinationPort: random.int(65536) };
  switch (random.int(3)) {
    case 0: {
      const sourceAddress = randomIPv4(random);
      return { connection: { sourceAddress, destinationAddress: randomIPv4(random), ...ports }, remoteAddress: sourceAddress };
    }
    case 1: {
      const sourceAddress = randomIPv6(random);
      return { connection: { sourceAddress, destinationAddress: randomIPv6(random), ...ports }, remoteAddress: canonicalIPv6(sourceAddress) };
    }
    default: {
      const client = randomIPv4(random);
      return { connection: { sourceAddress: `::ffff:${client}`, destinationAddress: randomIPv6(random), ...ports }, remoteAddress: client };
    }
  }
}

function randomTlvs(random: SeededRandom): Buffer {
  return Buffer.concat(
    Array.from({ length: random.int(4) }, () => {
      const value = random.bytes(random.int(40));
      return Buffer.concat([Buffer.from([random.int(256), value.length >> 8, value.length & 0xff]), value]);
    }),
  );
}

function show(data: Buffer): string {
  return data.subarray(0, 6).equals(Buffer.from('PROXY ')) ? JSON.stringify(data.toString('latin1')) : data.toString('hex');
}

test('seeded: 400 generated v1 and v2 headers give exactly their client address and port, and end where they end', () => {
  const random = new SeededRandom(SEED);
  const seen = { v1: 0, v2: 0, mapped: 0 };
  for (let i = 0; i < 400; i++) {
    const { connection, remoteAddress } = randomConnection(random);
    const v2 = random.int(2) === 1;
    const header = v2 ? encodeProxyV2(connection, { tlvs: randomTlvs(random) }) : encodeProxyV1(connection);
    const following = random.bytes(random.int(64));
    const label = `case ${i}: ${show(header)}`;
    assert.deepEqual(
      parseProxyHeader(Buffer.concat([header, following])),
      { state: 'complete', headerBytes: header.length, remoteAddress, remotePort: connection.sourcePort },
      label,
    );
    const cut = 1 + random.int(header.length - 1);
    assert.deepEqual(parseProxyHeader(header.subarray(0, cut)), { state: 'incomplete' }, `${label}, its first ${cut} bytes`);
    seen[v2 ? 'v2' : 'v1']++;
    if (connection.sourceAddress.startsWith('::ffff:')) seen.mapped++;
  }
  assert.ok(seen.v1 > 150 && seen.v2 > 150 && seen.mapped > 100, `the generator covers every kind: ${JSON.stringify(seen)}`);
});

test('seeded: generated v1 headers with one field broken are refused, each for its reason', () => {
  const random = new SeededRandom(SEED + 1);
  const reasons = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const { connection } = randomConnection(random);
    const family = net.isIP(connection.sourceAddress) === 4 ? 'TCP4' : 'TCP6';
    const fields = ['PROXY', family, connection.sourceAddress, connection.destinationAddress, String(connection.sourcePort), String(connection.destinationPort)];
    let reason: string;
    switch (random.int(6)) {
      case 0: {
        const word = random.pick(['TCP', 'TCP5', 'UDP4', 'UDP6', 'tcp4', 'TCP46', 'UNIX', 'unknown']);
        fields[1] = word;
        reason = `PROXY v1 unsupported protocol "${word}"`;
        break;
      }
      case 1:
        fields[2 + random.int(2)] = family === 'TCP4' ? randomIPv6(random) : randomIPv4(random);
        reason = `PROXY v1 invalid ${family} address`;
        break;
      case 2: {
        const index = 2 + random.int(2);
        const parts = fields[index].split(family === 'TCP4' ? '.' : ':');
        parts[random.int(parts.length)] = family === 'TCP4' ? String(256 + random.int(744)) : random.pick(['g', '12345', '-1']);
        fields[index] = parts.join(family === 'TCP4' ? '.' : ':');
        reason = `PROXY v1 invalid ${family} address`;
        break;
      }
      case 3:
        fields[4 + random.int(2)] = random.pick([String(65536 + random.int(34464)), `0${1 + random.int(65535)}`, `-${random.int(65536)}`, '', '1e3']);
        reason = 'PROXY v1 invalid port';
        break;
      case 4:
        if (random.int(2) === 0) fields.splice(2 + random.int(4), 1);
        else fields.splice(2 + random.int(5), 0, String(random.int(65536)));
        reason = 'PROXY v1 header must have 6 fields';
        break;
      default:
        fields.splice(2 + random.int(4), 0, '');
        reason = 'PROXY v1 header must have 6 fields';
    }
    const header = Buffer.from(`${fields.join(' ')}\r\n`, 'latin1');
    assert.deepEqual(parseProxyHeader(Buffer.concat([header, GET('/')])), { state: 'invalid', reason }, `case ${i}: ${show(header)}`);
    reasons.add(reason.replace(/".*"/, '"…"'));
  }
  assert.equal(reasons.size, 5, [...reasons].join('; '));
});

test('seeded: generated v2 headers with one field broken are refused, each for its reason', () => {
  const random = new SeededRandom(SEED + 2);
  for (let i = 0; i < 300; i++) {
    const { connection } = randomConnection(random);
    const header = encodeProxyV2(connection, { tlvs: randomTlvs(random) });
    let reason: string;
    switch (random.int(4)) {
      case 0: {
        const version = random.pick([0, 1, 3, 4, 7, 15]);
        header[12] = (version << 4) | 0x1;
        reason = `PROXY v2 unsupported version ${version}`;
        break;
      }
      case 1: {
        const command = 2 + random.int(14);
        header[12] = 0x20 | command;
        reason = `PROXY v2 unknown command ${command}`;
        break;
      }
      case 2: {
        const length = V2_MAX_HEADER_BYTES - 15 + random.int(0x10000 - V2_MAX_HEADER_BYTES + 15);
        header.writeUInt16BE(length, 14);
        reason = `PROXY v2 header of ${16 + length} bytes exceeds ${V2_MAX_HEADER_BYTES}`;
        break;
      }
      default: {
        const inet6 = header[13] === 0x21;
        const short = random.int(inet6 ? 36 : 12);
        header.writeUInt16BE(short, 14);
        reason = 'PROXY v2 address block shorter than its family needs';
        break;
      }
    }
    assert.deepEqual(parseProxyHeader(header), { state: 'invalid', reason }, `case ${i}: ${show(header)}`);
  }
});

test('seeded: bytes that leave both signatures are refused at the first differing byte', () => {
  const random = new SeededRandom(SEED + 3);
  const V1 = Buffer.from('PROXY ');
  for (let i = 0; i < 500; i++) {
    const signature = random.int(2) === 0 ? V1 : V2_SIGNATURE;
    const agreeing = random.int(signature.length);
    let differing: number;
    do differing = random.int(256);
    while (differing === signature[agreeing] || (agreeing === 0 && (differing === V1[0] || differing === V2_SIGNATURE[0])));
    const data = Buffer.concat([signature.subarray(0, agreeing), Buffer.from([differing]), random.bytes(random.int(200))]);
    assert.deepEqual(parseProxyHeader(data), { state: 'invalid', reason: NOT_PROXY }, `case ${i}: ${data.toString('hex')}`);
  }
});

test('seeded: a v1 line without CRLF waits up to 107 bytes, then is refused', () => {
  const random = new SeededRandom(SEED + 4);
  for (let i = 0; i < 500; i++) {
    const rest = Array.from({ length: random.int(200) }, () => {
      let byte: number;
      do byte = random.int(256);
      while (byte === 0x0d || byte === 0x0a);
      return byte;
    });
    const line = Buffer.concat([Buffer.from('PROXY '), Buffer.from(rest)]);
    const expected = line.length >= V1_MAX_HEADER_BYTES ? { state: 'invalid', reason: 'PROXY v1 header longer than 107 bytes' } : { state: 'incomplete' };
    assert.deepEqual(parseProxyHeader(line), expected, `case ${i}: ${line.length} bytes`);
  }
});

// ---- acceptProxyProtocol in front of a real http.Server ----

interface Frontend {
  port: number;
  results: ProxyProtocolResult[];
  close: () => Promise<void>;
}

/**
 * The integration the proxy server uses: a net.Server reads the PROXY header, then feeds the socket
 * to an http.Server via emit('connection'). Each response echoes what the request handler saw.
 */
async function startFrontend({ timeoutMs = 5000, handOver = (emit: () => void) => emit() } = {}): Promise<Frontend> {
  const results: ProxyProtocolResult[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          client: connectionClientAddress(req.socket) ?? null,
          socketAddress: req.socket.remoteAddress,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  });
  const tcp = net.createServer((socket) => {
    acceptProxyProtocol(socket, { timeoutMs }, (result) => {
      results.push(result);
      if (!result.ok) return socket.destroy();
      if (result.remoteAddress) setConnectionClientAddress(socket, result.remoteAddress);
      handOver(() => server.emit('connection', socket));
    });
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  return {
    port: (tcp.address() as net.AddressInfo).port,
    results,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => tcp.close(resolve));
    },
  };
}

/**
 * Writes each chunk as its own TCP segment (no Nagle, a pause between writes), then collects
 * everything the server sends until it closes the connection.
 */
async function converse(port: number, chunks: Buffer[], { endAfterWriting = false } = {}): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const received: Buffer[] = [];
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const [index, chunk] of chunks.entries()) {
    if (index > 0) await sleep(15);
    if (socket.destroyed) break;
    await new Promise((resolve) => socket.write(chunk, resolve));
  }
  if (endAfterWriting) socket.end();
  await closed;
  return Buffer.concat(received).toString('latin1');
}

/** The JSON bodies of the responses in a raw HTTP/1.1 stream (all Content-Length delimited). */
function responseBodies(raw: string): Array<Record<string, unknown>> {
  const bodies: Array<Record<string, unknown>> = [];
  let rest = raw;
  while (rest.length > 0) {
    const headerEnd = rest.indexOf('\r\n\r\n');
    assert.ok(headerEnd > 0, `unterminated response: ${JSON.stringify(rest)}`);
    const head = rest.slice(0, headerEnd);
    assert.match(head, /^HTTP\/1\.1 200 /);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    bodies.push(JSON.parse(rest.slice(headerEnd + 4, headerEnd + 4 + length)));
    rest = rest.slice(headerEnd + 4 + length);
  }
  return bodies;
}

async function withFrontend(
  options: Parameters<typeof startFrontend>[0],
  body: (frontend: Frontend) => Promise<void>,
): Promise<void> {
  const frontend = await startFrontend(options);
  try {
    await body(frontend);
  } finally {
    await frontend.close();
  }
}

test('v1 TCP4 header and request in one packet', () =>
  withFrontend({}, async ({ port, results }) => {
    const raw = await converse(port, [Buffer.concat([encodeProxyV1(TCP4), LAST_GET('/one')])]);
    assert.deepEqual(responseBodies(raw).map((b) => [b.url, b.client]), [['/one', '203.0.113.7']]);
    assert.deepEqual(results, [{ ok: true, remoteAddress: '203.0.113.7', remotePort: 51234 }]);
  }));

test('v1 TCP6 header', () =>
  withFrontend({}, async ({ port }) => {
    const raw = await converse(port, [Buffer.concat([encodeProxyV1(TCP6), LAST_GET('/six')])]);
    assert.equal(responseBodies(raw)[0].client, '2001:db8::7');
  }));

test('v2 TCP4 and TCP6 headers, with TLVs', () =>
  withFrontend({}, async ({ port }) => {
    const tlvs = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]);
    const four = await converse(port, [Buffer.concat([encodeProxyV2(TCP4, { tlvs }), LAST_GET('/v2-four')])]);
    assert.deepEqual(responseBodies(four).map((b) => [b.url, b.client]), [['/v2-four', '203.0.113.7']]);
    const six = await converse(port, [Buffer.concat([encodeProxyV2(TCP6), LAST_GET('/v2-six')])]);
    assert.deepEqual(responseBodies(six).map((b) => [b.url, b.client]), [['/v2-six', '2001:db8::7']]);
  }));

test('v2 LOCAL and v1 UNKNOWN leave the socket address as the client', () =>
  withFrontend({}, async ({ port, results }) => {
    const local = responseBodies(await converse(port, [Buffer.concat([encodeProxyV2('LOCAL'), LAST_GET('/local')])]));
    assert.deepEqual([local[0].url, local[0].client, local[0].socketAddress], ['/local', null, '127.0.0.1']);
    const unknown = responseBodies(await converse(port, [Buffer.concat([encodeProxyV1('UNKNOWN'), LAST_GET('/unknown')])]));
    assert.deepEqual([unknown[0].url, unknown[0].client], ['/unknown', null]);
    assert.deepEqual(results, [{ ok: true }, { ok: true }]);
  }));

test('a header split over several packets, the request after it split too', () =>
  withFrontend({}, async ({ port, results }) => {
    for (const header of [encodeProxyV1(TCP4), encodeProxyV2(TCP6)]) {
      const request = LAST_GET('/split');
      const chunks = [header.subarray(0, 1), header.subarray(1, 7), header.subarray(7, 14), header.subarray(14), request.subarray(0, 5), request.subarray(5)];
      const bodies = responseBodies(await converse(port, chunks));
      assert.deepEqual(bodies.map((b) => b.url), ['/split']);
    }
    assert.deepEqual(
      results.map((r) => r.ok && r.remoteAddress),
      ['203.0.113.7', '2001:db8::7'],
    );
  }));

test('the tail of the header packet and later packets reach the parser in order', () =>
  withFrontend({}, async ({ port }) => {
    const post = Buffer.from('POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 11\r\n\r\nhello');
    const chunks = [
      // header + first request + the start of a second, with its body split across packets
      Buffer.concat([encodeProxyV2(TCP4), GET('/first'), post]),
      Buffer.from(' world'),
      LAST_GET('/third'),
    ];
    const bodies = responseBodies(await converse(port, chunks));
    assert.deepEqual(
      bodies.map((b) => [b.method, b.url, b.body, b.client]),
      [
        ['GET', '/first', '', '203.0.113.7'],
        ['POST', '/upload', 'hello world', '203.0.113.7'],
        ['GET', '/third', '', '203.0.113.7'],
      ],
    );
  }));

test('the owner may take the socket over later (asynchronous hand-over)', () =>
  withFrontend({ handOver: (emit) => setTimeout(emit, 30) }, async ({ port }) => {
    const chunks = [Buffer.concat([encodeProxyV1(TCP4), GET('/early')]), LAST_GET('/while-waiting')];
    const bodies = responseBodies(await converse(port, chunks));
    assert.deepEqual(bodies.map((b) => [b.url, b.client]), [
      ['/early', '203.0.113.7'],
      ['/while-waiting', '203.0.113.7'],
    ]);
  }));

test('a connection without a PROXY header is refused before HTTP sees it', () =>
  withFrontend({}, async ({ port, results }) => {
    const raw = await converse(port, [LAST_GET('/no-header')]);
    assert.equal(raw, '');
    assert.equal(results.length, 1);
    assert.equal(results[0].ok, false);
  }));

test('garbage after a valid-looking start is refused', () =>
  withFrontend({}, async ({ port, results }) => {
    assert.equal(await converse(port, [Buffer.from('PROXY TCP4 not-an-address 192.0.2.1 1 2\r\n'), LAST_GET('/')]), '');
    assert.equal(await converse(port, [Buffer.concat([v2Raw(0x21, 0x11, Buffer.alloc(4)), LAST_GET('/')])]), '');
    assert.deepEqual(results.map((r) => r.ok), [false, false]);
  }));

test('oversized headers are refused without waiting for the rest', () =>
  withFrontend({}, async ({ port, results }) => {
    // Neither connection sends enough to complete its header; only the size limit can end them.
    assert.equal(await converse(port, [Buffer.from('PROXY TCP4 ' + '1'.repeat(200))]), '');
    assert.equal(await converse(port, [v2Raw(0x21, 0x11, Buffer.alloc(100), 5000)]), '');
    assert.equal(results.length, 2);
    assert.ok(results.every((r) => !r.ok && /107|exceeds/.test(r.reason)), JSON.stringify(results));
  }));

test('a peer that sends no header in time is dropped', () =>
  withFrontend({ timeoutMs: 50 }, async ({ port, results }) => {
    assert.equal(await converse(port, [Buffer.from('PROXY TCP4 203.0.113.7')]), '');
    assert.equal(await converse(port, []), '');
    assert.equal(results.length, 2);
    assert.ok(results.every((r) => !r.ok && /within 50 ms/.test(r.reason)), JSON.stringify(results));
  }));

test('a peer that hangs up mid-header is reported, once', () =>
  withFrontend({}, async ({ port, results }) => {
    await converse(port, [Buffer.from('PROXY TCP4 203')], { endAfterWriting: true });
    await sleep(20);
    assert.equal(results.length, 1);
    assert.ok(!results[0].ok && /closed/.test(results[0].reason), JSON.stringify(results));
  }));

// An http.Server only tracks connections (headersTimeout, requestTimeout, closeIdleConnections)
// once it is listening: fed from a separate net.Server that is not the case. Letting the
// http.Server listen and run its own 'connection' listeners after the header keeps all of that.
test('behind a listening http.Server, its slowloris timeout still applies after the header', { timeout: 10_000 }, async () => {
  const server = http.createServer({ headersTimeout: 200, requestTimeout: 300, connectionsCheckingInterval: 20 }, (req, res) =>
    res.end(`hello ${connectionClientAddress(req.socket)}`),
  );
  const httpListeners = server.listeners('connection') as Array<(socket: net.Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) =>
    acceptProxyProtocol(socket, { timeoutMs: 5000 }, (result) => {
      if (!result.ok) return socket.destroy();
      if (result.remoteAddress) setConnectionClientAddress(socket, result.remoteAddress);
      for (const listener of httpListeners) listener.call(server, socket);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const served = await converse(port, [Buffer.concat([encodeProxyV1(TCP4), LAST_GET('/')])]);
    assert.match(served, /^HTTP\/1\.1 200 [^]*hello 203\.0\.113\.7$/);
    // Headers never finished: Node answers 408 and closes, as it does without the PROXY header.
    const slow = await converse(port, [Buffer.concat([encodeProxyV1(TCP4), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n')])]);
    assert.match(slow, /^HTTP\/1\.1 408 /);
  } finally {
    server.close();
  }
});
