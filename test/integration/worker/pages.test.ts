import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import * as cheerio from 'cheerio';
import { copyOfFixture, removeDir, startWorker, type RunningWorker } from '../../helpers/worker-harness.ts';

let worker: RunningWorker;
let data: string;

before(async () => {
  const fixture = await copyOfFixture();
  data = fixture.data;
  worker = await startWorker(fixture);
});

after(async () => {
  assert.equal(await worker.stop(), 0);
  await removeDir(data);
});

async function page(path: string) {
  const response = await fetch(worker.url + path);
  const body = await response.text();
  return { response, body, $: cheerio.load(body) };
}

/** Sends the path exactly as given (fetch would normalise "../"). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: worker.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function assertAssetsFromStaticPrefix($: cheerio.CheerioAPI): void {
  assert.equal($('link[rel=stylesheet]').attr('href'), '/_static/switchyard.css');
  assert.equal($('script[src]').attr('src'), '/_static/switchyard.js');
  for (const element of $('link[href], script[src], img[src]').toArray()) {
    const url = $(element).attr('href') ?? $(element).attr('src')!;
    if (!url.includes('/raw/')) assert.match(url, /^\/_static\//);
  }
}

test('repo list shows both seeded repositories with clone commands', async () => {
  const { response, $ } = await page('/');
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type')!, /^text\/html/);
  assert.equal($('title').text(), 'Repositories · Switchyard');
  assert.deepEqual($('a.repo').map((_, a) => $(a).attr('href')).get(), ['/demo-git', '/demo-hg']);
  assert.match($('code').text(), /git clone http:\/\/127\.0\.0\.1:\d+\/demo-git/);
  assert.match($('code').text(), /hg clone http:\/\/127\.0\.0\.1:\d+\/demo-hg/);
  assertAssetsFromStaticPrefix($);
});

for (const [repo, branch, tag] of [
  ['demo-git', 'main', 'v0.5'],
  ['demo-hg', 'default', 'v0.5'],
]) {
  test(`${repo} summary: branches, tags, 20 recent commits, links that resolve`, async () => {
    const { response, $ } = await page(`/${repo}`);
    assert.equal(response.status, 200);
    assert.equal($('title').text(), `${repo} · Switchyard`);
    assert.equal($('tr.commit').length, 20);
    assert.ok($('.refs a').filter((_, a) => $(a).text() === branch).length === 1, 'default branch listed');
    assert.ok($('.refs a').filter((_, a) => $(a).text() === tag).length === 1, 'tag listed');
    assertAssetsFromStaticPrefix($);
    const links = [$('a.commit-id').first().attr('href')!, $('.refs a').first().attr('href')!, $('a.browse').attr('href')!];
    for (const link of links) assert.equal((await fetch(worker.url + link)).status, 200, link);
  });

  test(`${repo} tree browsing: directories, files, raw links`, async () => {
    const rev = repo === 'demo-git' ? 'main' : 'tip';
    const root = await page(`/${repo}/tree/${rev}/`);
    assert.equal(root.response.status, 200);
    const names = root.$('table.tree a').map((_, a) => root.$(a).text()).get();
    for (const expected of ['assets', 'data', 'docs', 'src', 'README.md']) assert.ok(names.includes(expected), expected);
    const nested = await page(`/${repo}/tree/${rev}/src/core`);
    assert.equal(nested.response.status, 200);
    assert.ok(nested.$('tr.entry-dir a').filter((_, a) => nested.$(a).text() === 'storage').length === 1);
    const spaced = await page(`/${repo}/tree/${rev}/docs/name%20with%20spaces.md`);
    assert.equal(spaced.$('pre.file').text(), 'A file whose name has spaces.\n');
    const rawHref = spaced.$('a.raw').attr('href')!;
    const raw = await fetch(worker.url + rawHref);
    assert.equal(await raw.text(), 'A file whose name has spaces.\n');
  });

  test(`${repo} raw: content type, length, binary intact, Range`, async () => {
    const rev = repo === 'demo-git' ? 'main' : 'tip';
    const png = await fetch(`${worker.url}/${repo}/raw/${rev}/assets/logo.png`);
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');
    const bytes = Buffer.from(await png.arrayBuffer());
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
    assert.equal(Number(png.headers.get('content-length')), bytes.length);

    const large = await fetch(`${worker.url}/${repo}/raw/${rev}/data/large.txt`);
    const text = await large.text();
    assert.ok(text.length > 4 * 1024 * 1024);
    const ranged = await fetch(`${worker.url}/${repo}/raw/${rev}/data/large.txt`, { headers: { range: 'bytes=1000-1099' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 1000-1099/${text.length}`);
    assert.equal(await ranged.text(), text.slice(1000, 1100));
    const outside = await fetch(`${worker.url}/${repo}/raw/${rev}/data/large.txt`, { headers: { range: `bytes=${text.length}-` } });
    assert.equal(outside.status, 416);
    const html = await fetch(`${worker.url}/${repo}/raw/${rev}/README.md`);
    assert.equal(html.headers.get('x-content-type-options'), 'nosniff');
  });
}

test('unknown repo, revision and path get a proper 404 page', async () => {
  for (const path of ['/no-such-repo', '/demo-git/tree/no-such-branch/', '/demo-git/tree/main/no/such/file', '/demo-hg/raw/tip/missing.txt', '/demo-git/raw/main/src', '/a/b/c/d/e/f']) {
    const { response, $ } = await page(path);
    assert.equal(response.status, 404, path);
    assert.match($('h1').text(), /404 Not found/, path);
    assertAssetsFromStaticPrefix($);
  }
});

test('traversal and injection attempts are refused without touching the filesystem outside the root', async () => {
  const attempts = [
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/demo-git/tree/main/../../../../etc/passwd',
    '/demo-git/raw/main/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/demo-git/raw/main/..%2f..%2f..%2fetc%2fpasswd',
    '/demo-git/raw/main/.git/config',
    '/demo-hg/raw/tip/.hg/hgrc',
    '/--upload-pack=touch%20%2Ftmp%2Fpwned/info/refs?service=git-upload-pack',
    '/demo-git/info/refs?service=--upload-pack=touch',
    '/demo-git/tree/--output=%2Ftmp%2Fpwned/',
    '/demo-git/raw/-n/README.md',
    '/demo-hg/raw/all()/README.md',
    "/demo-hg/tree/'tip'/",
    '/demo-hg/raw/tip::0/README.md',
    '/demo%20git',
    '/demo-git%0a',
    '/demo-git/tree/main/docs%0aREADME.md',
    '/demo-hg?cmd=--config=hooks.pre-capabilities=touch',
  ];
  for (const attempt of attempts) {
    const { status, body } = await rawGet(attempt);
    assert.ok([400, 403, 404].includes(status) || (attempt.includes('cmd=') && status !== 200), `${attempt} -> ${status}`);
    assert.doesNotMatch(body, /root:x:0:0/, attempt);
  }
});

test('health does not count as served; pages do', async () => {
  const before = await worker.health();
  await worker.health();
  await fetch(`${worker.url}/`);
  const after = await worker.health();
  assert.equal(after.served, before.served + 1);
  assert.equal(after.pool, 'clone');
  assert.equal(after.index, 3);
  assert.equal(after.pid, worker.process.pid);
  for (const key of ['inflight', 'rssBytes', 'heapUsedBytes', 'uptimeSec']) assert.equal(typeof after[key as keyof typeof after], 'number');
});
