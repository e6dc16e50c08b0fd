import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { html, raw } from '../../worker/html.ts';
import { parseRange, sliceBytes } from '../../worker/http/range.ts';
import { rawContentType } from '../../worker/http/content-type.ts';
import { isValidRepoName, isValidRevision, normaliseRepoPath } from '../../worker/names.ts';
import { Semaphore } from '../../worker/semaphore.ts';
import { MemoryCache } from '../../worker/cache/memory-cache.ts';

test('repo names: only plain names directly under the root', () => {
  for (const good of ['demo-git', 'a', 'A.b_c-1']) assert.equal(isValidRepoName(good), true, good);
  for (const bad of ['', '..', '.hidden', '-x', '--upload-pack=touch', 'a b', 'a\nb', 'a/b', 'a..b', 'x.lock', '%2e%2e']) {
    assert.equal(isValidRepoName(bad), false, JSON.stringify(bad));
  }
});

test('revisions never look like options, ranges or revsets', () => {
  for (const good of ['main', 'v0.1', 'tip', '0123abcd', 'release_1-2']) assert.equal(isValidRevision(good), true, good);
  for (const bad of ['-n', '--output=/tmp/x', 'a..b', 'HEAD~1', 'a:b', "x'y", 'all()', 'a b', 'a/b', '']) {
    assert.equal(isValidRevision(bad), false, JSON.stringify(bad));
  }
});

test('paths are normalised and traversal refused', () => {
  assert.equal(normaliseRepoPath(''), '');
  assert.equal(normaliseRepoPath('/a/b/'), 'a/b');
  assert.equal(normaliseRepoPath('docs/name with spaces.md'), 'docs/name with spaces.md');
  for (const bad of ['../etc/passwd', 'a/../../b', 'a//b', './a', 'a/./b', '.git/config', 'x/.hg/hgrc', 'a\nb', 'a\u0000b']) {
    assert.equal(normaliseRepoPath(bad), undefined, JSON.stringify(bad));
  }
});

test('html escapes interpolations but not nested html', () => {
  const inner = html`<b>${'<i>'}</b>`;
  assert.equal(html`<p title="${'"x"'}">${inner}${raw('&amp;')}${['<', 1]}</p>`.value, '<p title="&quot;x&quot;"><b>&lt;i&gt;</b>&amp;&lt;1</p>');
});

test('byte ranges', async () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-5', 100), { start: 95, end: 99 });
  assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  const source = Readable.from([Buffer.from('abcde'), Buffer.from('fghij')]);
  const chunks: Buffer[] = [];
  for await (const chunk of sliceBytes(source, { start: 3, end: 6 })) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'defg');
});

test('raw content types: by extension, active types as text, sniffed otherwise', () => {
  assert.equal(rawContentType('logo.png'), 'image/png');
  assert.equal(rawContentType('README.md'), 'text/markdown; charset=utf-8');
  assert.equal(rawContentType('index.html'), 'text/plain; charset=utf-8');
  assert.equal(rawContentType('x.svg'), 'text/plain; charset=utf-8');
  assert.equal(rawContentType('Makefile', Buffer.from('all:\n')), 'text/plain; charset=utf-8');
  assert.equal(rawContentType('blob', Buffer.from([1, 0, 2])), 'application/octet-stream');
});

test('semaphore: one holder at a time, waiters in order', async () => {
  const lock = new Semaphore(1);
  const order: string[] = [];
  const first = await lock.acquire();
  const second = lock.acquire().then((release) => (order.push('second'), release));
  const third = lock.acquire().then((release) => (order.push('third'), release));
  assert.equal(lock.queued, 2);
  first();
  first(); // releasing twice is harmless
  (await second)();
  (await third)();
  assert.deepEqual(order, ['second', 'third']);
  assert.equal(lock.queued, 0);
});

test('memory cache is bounded by bytes', async () => {
  const cache = new MemoryCache(10_000);
  for (let i = 0; i < 100; i++) await cache.set(`k${i}`, Buffer.alloc(1000));
  assert.ok(cache.localBytes <= 10_000);
  assert.equal(await cache.get('k0'), undefined);
  assert.ok(await cache.get('k99'));
  const disabled = new MemoryCache(0);
  await disabled.set('a', Buffer.from('x'));
  assert.equal(await disabled.get('a'), undefined);
});
