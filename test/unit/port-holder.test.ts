import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { describeHolders, findPortHolders, socketInodes } from '../../lib/port-holder.ts';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

test('socketInodes: the listening sockets on the port, from tcp and tcp6, else any socket on it', () => {
  const tcp = [
    HEADER,
    '   0: 0100007F:2391 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:2391 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:2392 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0',
  ].join('\n');
  const tcp6 = [HEADER, '   0: 00000000000000000000000000000000:2391 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0'].join('\n');
  assert.deepEqual([...socketInodes(0x2391, [tcp, tcp6])].sort(), ['111', '444']);
  // no listener: a connected socket bound to the port is what holds it
  const connectedOnly = [HEADER, '   0: 0100007F:2393 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 555 1 0'].join('\n');
  assert.deepEqual([...socketInodes(0x2393, [connectedOnly])], ['555']);
  assert.deepEqual([...socketInodes(0x2394, [tcp, 'garbage\nnot a table line'])], []);
});

test('findPortHolders names the process listening on a port, with its command line', async () => {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const holders = findPortHolders((server.address() as AddressInfo).port);
    assert.deepEqual(
      holders.map((holder) => holder.pid),
      [process.pid],
    );
    assert.ok(holders[0].command.startsWith(process.execPath), holders[0].command);
  } finally {
    server.close();
  }
});

test('describeHolders says when the holder cannot be seen', () => {
  assert.match(describeHolders([]), /cannot see/);
  assert.equal(describeHolders([{ pid: 7, command: 'node a.js' }, { pid: 8, command: 'nc -l' }]), 'pid 7 (node a.js), pid 8 (nc -l)');
});
