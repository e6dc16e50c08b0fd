import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostRewrite } from '../../bench/lib/throttle-relay.ts';

// The bench relays' Host rewrite: whatever the chunking, only the Host header line changes.

async function rewrite(chunks: string[]): Promise<string> {
  const stream = new HostRewrite('127.0.0.1:4100', 'git.example:8080');
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => out.push(chunk));
  for (const chunk of chunks) stream.write(Buffer.from(chunk, 'latin1'));
  stream.end();
  await new Promise((resolve) => stream.on('end', resolve));
  return Buffer.concat(out).toString('latin1');
}

const REQUESTS =
  'GET /big-git/info/refs HTTP/1.1\r\nHost: 127.0.0.1:4100\r\nUser-Agent: git/2.39\r\n\r\n' +
  'POST /big-git/git-upload-pack HTTP/1.1\r\nhost: 127.0.0.1:4100\r\nContent-Length: 28\r\n\r\n0000host: 127.0.0.1:41000\r\n\xff';
const EXPECTED =
  'GET /big-git/info/refs HTTP/1.1\r\nHost: git.example:8080\r\nUser-Agent: git/2.39\r\n\r\n' +
  'POST /big-git/git-upload-pack HTTP/1.1\r\nHost: git.example:8080\r\nContent-Length: 28\r\n\r\n0000host: 127.0.0.1:41000\r\n\xff';

test('every Host header of the relay becomes the server\'s, split anywhere across chunks; other bytes pass as they are', async () => {
  assert.equal(await rewrite([REQUESTS]), EXPECTED);
  for (let cut = 1; cut < REQUESTS.length; cut++) {
    assert.equal(await rewrite([REQUESTS.slice(0, cut), REQUESTS.slice(cut)]), EXPECTED, `cut at ${cut}`);
  }
  assert.equal(await rewrite([...REQUESTS]), EXPECTED, 'one byte at a time');
});

test('a request ending a chunk is passed on at once, not held for the next one', async () => {
  const stream = new HostRewrite('127.0.0.1:4100', 'git.example:8080');
  const request = 'GET / HTTP/1.1\r\nHost: 127.0.0.1:4100\r\n\r\n';
  const passed = new Promise<string>((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
  stream.write(Buffer.from(request, 'latin1'));
  assert.equal(await passed, 'GET / HTTP/1.1\r\nHost: git.example:8080\r\n\r\n');
});
