import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { CidrSet } from '../../lib/cidr.ts';
import {
  type ClientInfo,
  connectionClientAddress,
  resolveClient,
  setConnectionClientAddress,
  setUpstreamForwardingHeaders,
} from '../../proxy/client-address.ts';

const TRUSTED = new CidrSet(['10.0.0.0/8', '127.0.0.0/8', '::1/128', 'fd00::/8']);
const CLIENT = '198.51.100.9';

/** resolveClient only reads req.headers, so a request is its (already lower-cased) headers. */
function requestWith(headers: http.IncomingHttpHeaders): http.IncomingMessage {
  return { headers } as http.IncomingMessage;
}

function resolve(peer: string, headers: http.IncomingHttpHeaders): ClientInfo {
  return resolveClient(requestWith(headers), TRUSTED, peer);
}

test('an untrusted peer is the client, whatever it claims', () => {
  const info = resolve('203.0.113.5', {
    host: 'example.test',
    'x-forwarded-for': '10.0.0.1, 1.2.3.4',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.test',
    forwarded: 'for=1.2.3.4;proto=https',
  });
  assert.deepEqual(info, { ip: '203.0.113.5', proto: 'http', host: 'example.test', forwardedFor: '203.0.113.5' });
});

test("the caller's per-connection trust decision is used as given, with the X-Forwarded-For walk still checking each hop", () => {
  const headers = { host: 'example.test', 'x-forwarded-for': `${CLIENT}, 10.0.0.7` };
  // decided untrusted when the connection was admitted: nothing the request claims counts
  assert.deepEqual(resolveClient(requestWith(headers), TRUSTED, '10.0.0.2', false), {
    ip: '10.0.0.2',
    proto: 'http',
    host: 'example.test',
    forwardedFor: '10.0.0.2',
  });
  // decided trusted: the walk goes left through the trusted hop 10.0.0.7 to the client
  const trusted = resolveClient(requestWith(headers), TRUSTED, '10.0.0.2', true);
  assert.equal(trusted.ip, CLIENT);
  assert.equal(trusted.forwardedFor, `${CLIENT}, 10.0.0.7, 10.0.0.2`);
});

test('a trusted peer without X-Forwarded-For is the client', () => {
  assert.deepEqual(resolve('10.0.0.2', { host: 'example.test' }), {
    ip: '10.0.0.2',
    proto: 'http',
    host: 'example.test',
    forwardedFor: '10.0.0.2',
  });
});

test('a trusted peer names the client; the chain passed on ends with the peer', () => {
  const info = resolve('10.0.0.2', { host: 'internal', 'x-forwarded-for': CLIENT, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'example.test' });
  assert.deepEqual(info, { ip: CLIENT, proto: 'https', host: 'example.test', forwardedFor: `${CLIENT}, 10.0.0.2` });
});

test('a chain through two trusted proxies', () => {
  const info = resolve('10.0.0.2', { 'x-forwarded-for': `${CLIENT}, 10.0.0.1` });
  assert.equal(info.ip, CLIENT);
  assert.equal(info.forwardedFor, `${CLIENT}, 10.0.0.1, 10.0.0.2`);
});

test('entries the client forged to the left of its own address are not believed', () => {
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': `1.1.1.1, ${CLIENT}, 10.0.0.1` }).ip, CLIENT);
  // Even a forged trusted address: the walk stops at the first untrusted hop.
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': `10.9.9.9, ${CLIENT}` }).ip, CLIENT);
});

test('when every hop is trusted the leftmost one is the client', () => {
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': '10.0.0.3, 10.0.0.1' }).ip, '10.0.0.3');
});

test('an invalid entry stops the walk at the last trusted hop', () => {
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': `${CLIENT}, garbage, 10.0.0.1` }).ip, '10.0.0.1');
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': 'unknown' }).ip, '10.0.0.2');
  for (const notAnAddress of [`${CLIENT}:443`, '[2001:db8::1]:80', '127.1', '0x7f000001', '2130706433', '1.2.3.4.5', '"1.2.3.4"', 'for=1.2.3.4']) {
    assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': notAnAddress }).ip, '10.0.0.2', notAnAddress);
  }
});

test('spaces and empty entries are tolerated', () => {
  const info = resolve('10.0.0.2', { 'x-forwarded-for': `  ${CLIENT} ,, 10.0.0.1 ,` });
  assert.equal(info.ip, CLIENT);
  assert.equal(info.forwardedFor, `${CLIENT}, 10.0.0.1, 10.0.0.2`);
});

test('several X-Forwarded-For headers read as one chain', async () => {
  // Node joins repeated X-Forwarded-For headers; check against the real parser.
  const server = http.createServer((req, res) => res.end(JSON.stringify(resolveClient(req, TRUSTED, req.socket.remoteAddress ?? ''))));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  try {
    const body = await new Promise<string>((done, fail) => {
      const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => (text += chunk));
      socket.on('end', () => done(text.slice(text.indexOf('\r\n\r\n') + 4)));
      socket.on('error', fail);
      socket.end(
        'GET / HTTP/1.1\r\nHost: example.test\r\n' +
          `X-Forwarded-For: 1.1.1.1, ${CLIENT}\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n`,
      );
    });
    assert.deepEqual(JSON.parse(body), {
      ip: CLIENT,
      proto: 'http',
      host: 'example.test',
      forwardedFor: `1.1.1.1, ${CLIENT}, 10.0.0.1, 127.0.0.1`,
    });
  } finally {
    server.close();
  }
  // Also when headers arrive as an array (e.g. built by hand).
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': [CLIENT, '10.0.0.1'] as unknown as string }).ip, CLIENT);
});

test('IPv6 peers and chains', () => {
  const info = resolve('::1', { 'x-forwarded-for': '2001:db8::1, fd00::2' });
  assert.equal(info.ip, '2001:db8::1');
  assert.equal(info.forwardedFor, '2001:db8::1, fd00::2, ::1');
  assert.equal(resolve('2001:db8::66', { 'x-forwarded-for': CLIENT }).ip, '2001:db8::66');
  // Written differently, still the same trusted address.
  assert.equal(resolve('0:0:0:0:0:0:0:1', { 'x-forwarded-for': CLIENT }).ip, CLIENT);
});

test('IPv4-mapped IPv6 addresses count as the IPv4 address', () => {
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
  const trustedPeer = resolve('::ffff:10.0.0.2', { 'x-forwarded-for': `::ffff:${CLIENT}` });
  assert.deepEqual([trustedPeer.ip, trustedPeer.forwardedFor], [CLIENT, `::ffff:${CLIENT}, 10.0.0.2`]);
  const untrustedPeer = resolve('::ffff:203.0.113.5', { 'x-forwarded-for': CLIENT });
  assert.deepEqual([untrustedPeer.ip, untrustedPeer.forwardedFor], ['203.0.113.5', '203.0.113.5']);
  assert.equal(resolve('10.0.0.2', { 'x-forwarded-for': `${CLIENT}, ::ffff:10.0.0.1` }).ip, CLIENT);
});

test('X-Forwarded-Proto: first value, only http or https', () => {
  const proto = (value: string | undefined) => resolve('10.0.0.2', value === undefined ? {} : { 'x-forwarded-proto': value }).proto;
  assert.equal(proto('https'), 'https');
  assert.equal(proto('HTTPS'), 'https');
  assert.equal(proto(' https , http'), 'https');
  assert.equal(proto('http, https'), 'http');
  assert.equal(proto('ftp'), 'http');
  assert.equal(proto('wss'), 'http');
  assert.equal(proto(''), 'http');
  assert.equal(proto(undefined), 'http');
});

test('X-Forwarded-Host: first value when trusted, else the Host header', () => {
  assert.equal(resolve('10.0.0.2', { host: 'internal:8080', 'x-forwarded-host': 'example.test, other.test' }).host, 'example.test');
  assert.equal(resolve('10.0.0.2', { host: 'internal:8080' }).host, 'internal:8080');
  assert.equal(resolve('10.0.0.2', {}).host, undefined);
  assert.equal(resolve('203.0.113.5', { host: 'example.test', 'x-forwarded-host': 'evil.test' }).host, 'example.test');
});

test('bad peer addresses do not throw', () => {
  assert.deepEqual(resolve('', { 'x-forwarded-for': CLIENT }), { ip: '', proto: 'http', host: undefined, forwardedFor: '' });
  assert.equal(resolve('not-an-ip', { 'x-forwarded-for': CLIENT }).ip, 'not-an-ip');
  assert.equal(resolveClient(requestWith({}), TRUSTED, undefined as unknown as string).ip, '');
});

test('upstream headers replace whatever the client sent', () => {
  const headers: http.OutgoingHttpHeaders = {
    host: 'example.test',
    'X-Forwarded-For': '6.6.6.6',
    'x-forwarded-proto': 'https',
    'X-Forwarded-Host': 'evil.test',
    'X-Real-IP': '6.6.6.6',
    Forwarded: 'for=6.6.6.6',
    accept: 'text/html',
  };
  setUpstreamForwardingHeaders(headers, { ip: CLIENT, proto: 'http', host: 'example.test', forwardedFor: `${CLIENT}, 10.0.0.2` });
  assert.deepEqual(headers, {
    host: 'example.test',
    accept: 'text/html',
    'x-forwarded-for': `${CLIENT}, 10.0.0.2`,
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'example.test',
    'x-real-ip': CLIENT,
  });
});

test('without a host, no X-Forwarded-Host goes upstream', () => {
  const headers: http.IncomingHttpHeaders = { 'x-forwarded-host': 'evil.test' };
  setUpstreamForwardingHeaders(headers, { ip: CLIENT, proto: 'https', host: undefined, forwardedFor: CLIENT });
  assert.deepEqual(headers, { 'x-forwarded-for': CLIENT, 'x-forwarded-proto': 'https', 'x-real-ip': CLIENT });
});

test('resolve then set: an untrusted spoofer reaches the upstream as itself', () => {
  const incoming: http.IncomingHttpHeaders = { host: 'example.test', 'x-forwarded-for': '10.0.0.1', 'x-real-ip': '10.0.0.1' };
  const info = resolveClient(requestWith(incoming), TRUSTED, '203.0.113.5');
  const outgoing: http.OutgoingHttpHeaders = { ...incoming };
  setUpstreamForwardingHeaders(outgoing, info);
  assert.equal(outgoing['x-forwarded-for'], '203.0.113.5');
  assert.equal(outgoing['x-real-ip'], '203.0.113.5');
});

test('the PROXY protocol address is remembered per connection', () => {
  const first = new net.Socket();
  const second = new net.Socket();
  setConnectionClientAddress(first, CLIENT);
  assert.equal(connectionClientAddress(first), CLIENT);
  assert.equal(connectionClientAddress(second), undefined);
  first.destroy();
  second.destroy();
});
