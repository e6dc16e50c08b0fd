import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createStaticHandler } from '../../proxy/static.ts';

const PREFIX = '/_static/';
const SECRET = 'outside the root: must never be served';
// The smallest valid PNG: 1x1 transparent.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);
const BIG = crypto.randomBytes(1536 * 1024 + 7);

let tmp: string;
let root: string;
let baseUrl: { port: number };
let server: http.Server;

function write(relative: string, content: string | Buffer): void {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-static-'));
  root = path.join(tmp, 'public');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(tmp, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(tmp, '.env'), SECRET);
  write('hello.txt', 'hello world\n');
  write('app.css', 'body { color: red }\n');
  write('app.js', 'console.log(1);\n');
  write('logo.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>');
  write('pixel.png', PNG);
  write('big.bin', BIG);
  write('sub/dir/nested.txt', 'nested\n');
  write('a b.txt', 'space\n');
  write('100%.txt', 'percent\n');
  write('%2e%2e', 'a file literally named %2e%2e\n');
  write('.env', 'SECRET=1\n');
  write('.git/config', '[core]\n');
  write('sub/.hidden', 'hidden\n');
  fs.symlinkSync('hello.txt', path.join(root, 'link-inside.txt'));
  fs.symlinkSync('sub/dir', path.join(root, 'linked-dir'));
  fs.symlinkSync('../secret.txt', path.join(root, 'link-outside.txt'));
  fs.symlinkSync(tmp, path.join(root, 'link-parent'));
  fs.symlinkSync('.env', path.join(root, 'link-to-dotfile.txt'));
  fs.symlinkSync('../.env', path.join(root, 'link-to-outer-dotfile.txt'));
  fs.symlinkSync('sub/dir', path.join(root, '.dot-alias'));

  const handler = createStaticHandler({ prefix: PREFIX, root, maxAgeSec: 3600 });
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = { port: (server.address() as AddressInfo).port };
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A raw request: the path goes on the wire exactly as given (no URL normalization). */
function request(
  urlPath: string,
  { method = 'GET', headers = {}, port = baseUrl.port }: { method?: string; headers?: http.OutgoingHttpHeaders; port?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function assertPlainError(reply: Reply, status: number): void {
  assert.equal(reply.status, status);
  assert.match(reply.headers['content-type'] ?? '', /^text\/plain/);
  assert.equal(reply.body.toString(), `${status} ${http.STATUS_CODES[status]}\n`);
}

test('serves a file with validators, caching and range headers', async () => {
  const reply = await request('/_static/hello.txt');
  assert.equal(reply.status, 200);
  assert.equal(reply.body.toString(), 'hello world\n');
  assert.match(reply.headers['content-type'] ?? '', /^text\/plain/);
  assert.equal(reply.headers['content-length'], '12');
  assert.equal(reply.headers['cache-control'], 'public, max-age=3600');
  assert.equal(reply.headers['accept-ranges'], 'bytes');
  assert.ok(reply.headers.etag);
  assert.ok(reply.headers['last-modified']);
});

test('ignores the query string', async () => {
  const reply = await request('/_static/hello.txt?v=3#frag');
  assert.equal(reply.status, 200);
  assert.equal(reply.body.toString(), 'hello world\n');
});

test('content types follow the extension', async () => {
  const expected: Record<string, RegExp> = {
    'app.css': /^text\/css/,
    'app.js': /^(text|application)\/javascript/,
    'logo.svg': /^image\/svg\+xml/,
    'pixel.png': /^image\/png$/,
  };
  for (const [name, type] of Object.entries(expected)) {
    const reply = await request(PREFIX + name);
    assert.equal(reply.status, 200, name);
    assert.match(reply.headers['content-type'] ?? '', type, name);
  }
  assert.deepEqual((await request('/_static/pixel.png')).body, PNG);
});

test('percent-encoded names are decoded exactly once', async () => {
  assert.equal((await request('/_static/a%20b.txt')).body.toString(), 'space\n');
  assert.equal((await request('/_static/100%25.txt')).body.toString(), 'percent\n');
  // %252e%252e decodes to the name "%2e%2e", not to "..".
  const literal = await request('/_static/%252e%252e');
  assert.equal(literal.status, 200);
  assert.equal(literal.body.toString(), 'a file literally named %2e%2e\n');
});

test('conditional GET answers 304 for a matching ETag or date', async () => {
  const first = await request('/_static/hello.txt');
  const byEtag = await request('/_static/hello.txt', { headers: { 'if-none-match': first.headers.etag } });
  assert.equal(byEtag.status, 304);
  assert.equal(byEtag.body.length, 0);
  const byDate = await request('/_static/hello.txt', { headers: { 'if-modified-since': first.headers['last-modified'] } });
  assert.equal(byDate.status, 304);
  const stale = await request('/_static/hello.txt', { headers: { 'if-none-match': '"not-the-etag"' } });
  assert.equal(stale.status, 200);
  assert.equal(stale.body.toString(), 'hello world\n');
});

test('streams a large file whole', async () => {
  const reply = await request('/_static/big.bin');
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-length'], String(BIG.length));
  assert.ok(reply.body.equals(BIG));
});

test('serves byte ranges of a large file', async () => {
  const middle = await request('/_static/big.bin', { headers: { range: 'bytes=1048570-1048589' } });
  assert.equal(middle.status, 206);
  assert.equal(middle.headers['content-range'], `bytes 1048570-1048589/${BIG.length}`);
  assert.ok(middle.body.equals(BIG.subarray(1048570, 1048590)));

  const suffix = await request('/_static/big.bin', { headers: { range: 'bytes=-100' } });
  assert.equal(suffix.status, 206);
  assert.ok(suffix.body.equals(BIG.subarray(BIG.length - 100)));

  const open = await request('/_static/big.bin', { headers: { range: `bytes=${BIG.length - 5}-` } });
  assert.equal(open.status, 206);
  assert.ok(open.body.equals(BIG.subarray(BIG.length - 5)));
});

test('an unsatisfiable range is 416 with the size in Content-Range', async () => {
  const reply = await request('/_static/big.bin', { headers: { range: `bytes=${BIG.length}-` } });
  assertPlainError(reply, 416);
  assert.equal(reply.headers['content-range'], `bytes */${BIG.length}`);
});

test('HEAD has the headers of GET and no body', async () => {
  const reply = await request('/_static/big.bin', { method: 'HEAD' });
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-length'], String(BIG.length));
  assert.equal(reply.body.length, 0);
});

test('other methods are 405 with Allow', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const reply = await request('/_static/hello.txt', { method });
    assertPlainError(reply, 405);
    assert.equal(reply.headers.allow, 'GET, HEAD', method);
  }
});

test('path traversal never reaches outside the root', async () => {
  const attempts = [
    '/_static/../secret.txt',
    '/_static/sub/../../secret.txt',
    '/_static/%2e%2e/secret.txt',
    '/_static/%2e%2e%2fsecret.txt',
    '/_static/%2E%2E%2Fsecret.txt',
    '/_static/sub%2f..%2f..%2fsecret.txt',
    '/_static/..%5csecret.txt',
    '/_static/..\\secret.txt',
    '/_static/sub\\..\\..\\secret.txt',
    '/_static/%252e%252e%252fsecret.txt',
    '/_static/hello.txt%00.png',
    '/_static/%00',
    '/_static//' + path.join(tmp, 'secret.txt'),
    '/_static/' + encodeURIComponent(path.join(tmp, 'secret.txt')),
    '/_static/./hello.txt',
    '/_static/..',
    '/_static/../.env',
  ];
  for (const attempt of attempts) {
    const reply = await request(attempt);
    assert.ok(reply.status === 400 || reply.status === 404, `${attempt} -> ${reply.status}`);
    assert.ok(!reply.body.toString().includes(SECRET), attempt);
    assert.match(reply.headers['content-type'] ?? '', /^text\/plain/, attempt);
  }
});

test('a symlink inside the root is served, to a file or through a directory', async () => {
  const file = await request('/_static/link-inside.txt');
  assert.equal(file.status, 200);
  assert.equal(file.body.toString(), 'hello world\n');
  const throughDir = await request('/_static/linked-dir/nested.txt');
  assert.equal(throughDir.status, 200);
  assert.equal(throughDir.body.toString(), 'nested\n');
});

test('a symlink resolving outside the root is 404', async () => {
  for (const attempt of [
    '/_static/link-outside.txt',
    '/_static/link-parent/secret.txt',
    '/_static/link-to-outer-dotfile.txt',
  ]) {
    const reply = await request(attempt);
    assertPlainError(reply, 404);
  }
});

test('dotfiles are 404, also behind a symlink', async () => {
  for (const attempt of [
    '/_static/.env',
    '/_static/.git/config',
    '/_static/sub/.hidden',
    '/_static/%2eenv',
    '/_static/link-to-dotfile.txt',
    '/_static/.dot-alias/nested.txt',
  ]) {
    const reply = await request(attempt);
    assertPlainError(reply, 404);
  }
});

test('directories are 404, never listed', async () => {
  for (const attempt of ['/_static/', '/_static/sub', '/_static/sub/', '/_static/sub/dir/', '/_static/linked-dir']) {
    const reply = await request(attempt);
    assertPlainError(reply, 404);
  }
});

test('missing files and paths outside the prefix are 404', async () => {
  assertPlainError(await request('/_static/nope.txt'), 404);
  assertPlainError(await request('/_static/hello.txt/more'), 404);
  assertPlainError(await request('/elsewhere/hello.txt'), 404);
});

test('a malformed percent-encoding is 400 and the server keeps serving', async () => {
  assertPlainError(await request('/_static/%E0%A4%A'), 400);
  assertPlainError(await request('/_static/%ZZ.txt'), 400);
  assert.equal((await request('/_static/hello.txt')).status, 200);
});

test('a root that appears after start-up is picked up', async () => {
  const lateRoot = path.join(tmp, 'late');
  const handler = createStaticHandler({ prefix: PREFIX, root: lateRoot, maxAgeSec: 0 });
  const late = http.createServer(handler);
  await new Promise<void>((resolve) => late.listen(0, '127.0.0.1', resolve));
  const port = (late.address() as AddressInfo).port;
  try {
    assertPlainError(await request('/_static/x.txt', { port }), 404);
    fs.mkdirSync(lateRoot);
    fs.writeFileSync(path.join(lateRoot, 'x.txt'), 'late\n');
    const reply = await request('/_static/x.txt', { port });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.toString(), 'late\n');
    assert.equal(reply.headers['cache-control'], 'public, max-age=0');
  } finally {
    await new Promise((resolve) => late.close(resolve));
  }
});
