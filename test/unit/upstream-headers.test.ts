import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamHeaders } from '../../proxy/upstream-headers.ts';

const client = { ip: '198.51.100.9', proto: 'https' as const, host: 'example.test', forwardedFor: '198.51.100.9, 10.0.0.2' };

test('hop-by-hop headers, headers named in Connection and client-sent forwarding headers are dropped', () => {
  const headers = upstreamHeaders(
    {
      host: 'example.test',
      connection: 'keep-alive, X-Private',
      'keep-alive': 'timeout=5',
      'x-private': 'secret',
      te: 'trailers',
      'proxy-authorization': 'Basic x',
      'x-forwarded-for': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
      accept: 'text/html',
    },
    client,
  );
  assert.deepEqual(headers, {
    host: 'example.test',
    accept: 'text/html',
    'x-forwarded-for': '198.51.100.9, 10.0.0.2',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'example.test',
    'x-real-ip': '198.51.100.9',
  });
});

test('a single Connection token is honoured too, and upgrades keep Connection and Upgrade', () => {
  assert.equal(upstreamHeaders({ connection: 'x-one', 'x-one': '1' }, client)['x-one'], undefined);
  const upgrade = upstreamHeaders({ connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }, client, { upgrade: true });
  assert.equal(upgrade.connection, 'Upgrade');
  assert.equal(upgrade.upgrade, 'websocket');
  assert.equal(upgrade['sec-websocket-key'], 'k');
});

test('the incoming object is left as it was', () => {
  const incoming = { connection: 'close', 'x-forwarded-for': '1.1.1.1' };
  upstreamHeaders(incoming, client);
  assert.deepEqual(incoming, { connection: 'close', 'x-forwarded-for': '1.1.1.1' });
});

test('the body framing headers stay even when Connection names them', () => {
  const sized = upstreamHeaders({ connection: 'close, Content-Length', 'content-length': '35' }, client);
  assert.equal(sized['content-length'], '35');
  const chunked = upstreamHeaders({ connection: 'transfer-encoding', 'transfer-encoding': 'chunked' }, client);
  assert.equal(chunked['transfer-encoding'], 'chunked');
});
