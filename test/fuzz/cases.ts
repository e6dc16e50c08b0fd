// Hostile HTTP/1.1 conversations, built from a seed: request lines, headers, framing, upgrades and
// bodies chosen from pieces that broke proxies before (smuggling shapes, bad authorities, dot
// segments, odd framing, trickles), sent in random pieces, read or not. Case i of seed s is always
// the same conversation, so a failure is reproduced by its seed and index.
import { SeededRandom } from '../../lib/seeded-random.ts';

export type ClientBehaviour = 'read' | 'abort-after-send' | 'never-read' | 'half-close';

export interface FuzzCase {
  index: number;
  /** what is written, in order, with a pause before each piece */
  pieces: Array<{ delayMs: number; bytes: Buffer }>;
  behaviour: ClientBehaviour;
  /** a short human description for reports */
  summary: string;
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE', 'CONNECT', 'get', 'G\x00T', 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX', ''];
const ROUTES = ['/', '/echo', '/echo', '/slow?ms=40', '/big?bytes=300000', '/big?bytes=2000000', '/hang', '/reset', '/ws', '/hop-headers', '/arm-reset', '/healthz', '/_worker/health', '/_static/x.css', '/demo-git/info/refs?service=git-upload-pack', '/demo-git/git-upload-pack', '/demo-hg?cmd=capabilities'];
const ODD_TARGETS = [
  'http://a:99999/', 'http://[::1/', 'http://[::1]:80/echo', 'https://t/echo', 'http://u:p@t/', 'http:///x', 'ftp://t/', '*', 't:80', '//evil/x', '/x/../_worker/health',
  '/%5Fworker/health', '/_WORKER/health', '/a\\..\\echo', '/%2e%2e/%2e%2e/etc/passwd', '/_static/../../etc/passwd', '/%00', '/%ff%fe', '/%', '/%zz', '/?', '/#frag', '/a#b?c',
  '/?cmd=capabilities&cmd=unbundle', `/${'a'.repeat(5000)}`, `/?${'q=1&'.repeat(2000)}`, '/\u00e9', '/ spaced', '/tab\there', '',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'HTTP/0.9', 'http/1.1', ''];
const HOSTS = ['t', 't', 't', 'example.test:8080', '[::1]:80', 'a:99999', '', 'bad host/../x', 'x'.repeat(300), 't\x00'];
const EXTRA_HEADERS = [
  'Connection: keep-alive', 'Connection: close', 'Connection: Upgrade', 'Connection: close, content-length', 'Connection: keep-alive, transfer-encoding', 'Connection: x-private',
  'Connection: Upgrade, HTTP2-Settings', 'Upgrade: websocket', 'Upgrade: WebSocket', 'Upgrade: h2c', 'Upgrade: foo/1', 'Upgrade:',
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Expect: 100-continue', 'Expect: bogus', 'X-Forwarded-For: 6.6.6.6, 1.2.3.4',
  'X-Forwarded-For: junk', 'Forwarded: for=evil', 'X-Switchyard-Bot-Token: guessed-token-123', 'User-Agent: git/2.39.5', 'User-Agent: Jenkins',
  'User-Agent: Mozilla/5.0\r\nAccept: text/html', 'Sec-Fetch-Dest: document', 'Content-Type: application/x-git-upload-pack-request', 'Accept: application/mercurial-0.1',
  'Proxy-Authorization: Basic eDp5', 'TE: trailers', 'Trailer: X-T', 'Keep-Alive: timeout=999', 'X-Folded: a\r\n  continued', 'X Bad Name: 1', 'X-Nul: a\x00b', 'X-High: \u00ff\u00fe',
  `X-Big: ${'b'.repeat(9000)}`, `Cookie: ${'c=1; '.repeat(500)}`, Array.from({ length: 120 }, (_, i) => `X-Many-${i}: ${i}`).join('\r\n'), 'Host: second-host',
];
const LENGTHS = ['5', '0', '-1', '1e3', ' 5', '5, 5', '5,6', 'abc', '99999999999999999999', '3000000', '100000'];
const ENCODINGS = ['chunked', 'chunked', 'chunked, identity', 'gzip, chunked', ' chunked', 'CHUNKED', 'identity', 'xchunked', 'chunked\r\nTransfer-Encoding: chunked'];

type Body = { headers: string[]; bytes: Buffer[] };

function chunked(random: SeededRandom): Body {
  const bytes: Buffer[] = [];
  const chunks = 1 + random.int(3);
  for (let i = 0; i < chunks; i++) {
    const size = random.int(3) === 0 ? 70_000 : 1 + random.int(2000);
    const extension = random.int(5) === 0 ? ';ext=1' : '';
    bytes.push(Buffer.from(`${size.toString(16)}${extension}\r\n`), random.bytes(size), Buffer.from('\r\n'));
  }
  bytes.push(Buffer.from(random.int(4) === 0 ? '0\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n'));
  return { headers: ['Transfer-Encoding: chunked'], bytes };
}

const BODIES: Array<(random: SeededRandom) => Body> = [
  () => ({ headers: [], bytes: [] }),
  () => ({ headers: [], bytes: [] }),
  (random) => {
    const size = random.pick([1, 100, 5000, 70_000, 300_000]);
    return { headers: [`Content-Length: ${size}`], bytes: [random.bytes(size)] };
  },
  chunked,
  (random) => ({ headers: [`Content-Length: ${random.pick(LENGTHS)}`], bytes: [random.bytes(random.int(40))] }),
  (random) => ({ headers: [`Transfer-Encoding: ${random.pick(ENCODINGS)}`], bytes: [Buffer.from(random.pick(['5\r\nhello\r\n0\r\n\r\n', 'ZZ\r\nx\r\n0\r\n\r\n', 'ffffffffffffffff\r\nx', '5\r\nhelloXX0\r\n\r\n', '-1\r\n\r\n', '0\r\n']))] }),
  (random) => ({ headers: ['Content-Length: 4', 'Transfer-Encoding: chunked'], bytes: [Buffer.from('0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n')] }),
  (random) => ({ headers: ['Content-Length: 100'], bytes: [random.bytes(10 + random.int(50))] }), // truncated
  (random) => ({ headers: ['Content-Length: 3'], bytes: [Buffer.from('abcGET /echo HTTP/1.1\r\nHost: t\r\n\r\n')] }), // more than declared: a pipelined request
];

// A plausible request gets past the parser and the checks, to reach what lies behind them
// (bodies, queues, workers, tunnels); a hostile one is built from every piece.
const PLAUSIBLE = { methods: METHODS.slice(0, 9), versions: ['HTTP/1.1', 'HTTP/1.0'], hosts: HOSTS.slice(0, 5), headers: EXTRA_HEADERS.slice(0, 29), bodies: BODIES.slice(0, 4) };

function requestHead(random: SeededRandom): { head: string; summary: string; body: Body } {
  const plausible = random.int(2) === 0;
  const method = random.pick(plausible ? PLAUSIBLE.methods : METHODS);
  const target = !plausible && random.int(2) === 0 ? random.pick(ODD_TARGETS) : random.pick(ROUTES);
  const version = random.pick(plausible ? PLAUSIBLE.versions : VERSIONS);
  const lines = [`${method} ${target} ${version}`.replace(/ $/, '')];
  if (plausible || random.int(10) !== 0) lines.push(`Host: ${random.pick(plausible ? PLAUSIBLE.hosts : HOSTS)}`);
  const extras = random.int(4);
  for (let i = 0; i < extras; i++) lines.push(random.pick(plausible ? PLAUSIBLE.headers : EXTRA_HEADERS));
  const body = random.pick(plausible ? PLAUSIBLE.bodies : BODIES)(random);
  lines.push(...body.headers);
  return { head: `${lines.join('\r\n')}\r\n\r\n`, summary: `${JSON.stringify(method)} ${JSON.stringify(target.slice(0, 60))} ${version}`, body };
}

/** Splits the bytes into a few pieces, now and then with a pause before one (a trickle or a stall). */
function piecesOf(random: SeededRandom, bytes: Buffer): Array<{ delayMs: number; bytes: Buffer }> {
  if (random.int(3) !== 0) return [{ delayMs: 0, bytes }];
  const pieces: Array<{ delayMs: number; bytes: Buffer }> = [];
  let offset = 0;
  while (offset < bytes.length) {
    const size = Math.max(1, Math.min(bytes.length - offset, random.pick([1, 7, 100, 4096, 65_536])));
    pieces.push({ delayMs: random.pick([0, 0, 0, 5, 50, 200]), bytes: bytes.subarray(offset, offset + size) });
    offset += size;
    if (pieces.length > 30) {
      pieces.push({ delayMs: 0, bytes: bytes.subarray(offset) });
      break;
    }
  }
  return pieces;
}

/** The case with this index for this seed: one to three requests on one connection, and how the client behaves. */
export function fuzzCase(seed: number, index: number): FuzzCase {
  const random = new SeededRandom((seed * 1_000_003 + index) | 0);
  const requests = random.int(6) === 0 ? 2 + random.int(2) : 1;
  const parts: Buffer[] = [];
  const summaries: string[] = [];
  for (let i = 0; i < requests; i++) {
    const { head, summary, body } = requestHead(random);
    parts.push(Buffer.from(head, 'latin1'), ...body.bytes);
    summaries.push(summary);
  }
  const behaviour = random.pick<ClientBehaviour>(['read', 'read', 'read', 'read', 'abort-after-send', 'never-read', 'half-close']);
  if (random.int(20) === 0) parts.unshift(Buffer.from(random.pick(['\x16\x03\x01\x02\x00\x01\x00', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n', '\r\n\r\n', '\0\0\0\0'])));
  return { index, pieces: piecesOf(random, Buffer.concat(parts)), behaviour, summary: summaries.join(' | ') };
}
