// The classifier: table-driven cases for every default rule and for custom rules, and the requests
// Node's own HTTP clients send, captured in-process. Real git, hg, curl: test/integration/
// classify-clients.test.ts; Chromium: test/slow/classify-chromium.test.ts.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import { Classifier, splitUrl } from '../../proxy/classify.ts';
import type { RequestClass } from '../../lib/config.ts';
import { startCaptureServer, type CaptureServer } from '../helpers/capture-server.ts';
import { assertAll, BOT_TOKEN, classifierWith, show } from '../helpers/classify-captured.ts';

const defaults = classifierWith();

describe('requests captured from Node clients', () => {
  let server: CaptureServer;

  before(async () => {
    server = await startCaptureServer();
  });

  after(async () => {
    await server?.close();
  });

  test('Node fetch() and http.get API calls are page', async () => {
    const mark = server.mark();
    const controller = AbortSignal.timeout(10_000);
    const response = await fetch(`${server.baseUrl}/api/data`, { signal: controller });
    assert.equal(response.status, 200);
    await response.text();
    await new Promise<void>((resolve, reject) => {
      const request = http.get(`${server.baseUrl}/api/data`, { headers: { accept: 'application/json' }, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      request.on('timeout', () => request.destroy(new Error('http.get timed out')));
      request.on('error', reject);
    });
    const requests = server.since(mark);
    assert.equal(requests.length, 2, show(requests));
    assertAll(defaults, requests, 'page', 'Node API call');
  });
});

// ---------------------------------------------------------------------------------------------
// Synthetic cases
// ---------------------------------------------------------------------------------------------

interface Case {
  name: string;
  url: string;
  method?: string;
  headers?: IncomingHttpHeaders;
  ip?: string;
  expect: RequestClass;
}

const CHROME_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const FIREFOX_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';

function classifyCase(classifier: Classifier, testCase: Case): RequestClass {
  const { path: requestPath, query } = splitUrl(testCase.url);
  return classifier.classify({
    method: testCase.method ?? 'GET',
    path: requestPath,
    query,
    headers: testCase.headers ?? {},
    clientIp: testCase.ip ?? '192.0.2.10',
  });
}

function runTable(classifier: Classifier, cases: Case[]): void {
  for (const testCase of cases) {
    assert.equal(classifyCase(classifier, testCase), testCase.expect, `${testCase.name}: ${testCase.method ?? 'GET'} ${testCase.url} ${JSON.stringify(testCase.headers ?? {})} ip=${testCase.ip ?? '192.0.2.10'}`);
  }
}

test('splitUrl separates path and query without throwing', () => {
  const cases: Array<[string, string, Array<[string, string]>]> = [
    ['/repo/info/refs?service=git-upload-pack', '/repo/info/refs', [['service', 'git-upload-pack']]],
    ['/repo', '/repo', []],
    ['/repo?', '/repo', []],
    ['/?cmd=capabilities', '/', [['cmd', 'capabilities']]],
    ['/a?x=1&x=2&y', '/a', [['x', '1'], ['x', '2'], ['y', '']]],
    ['/a?b?c=d', '/a', [['b?c', 'd']]],
    ['/a?q=%zz', '/a', [['q', '%zz']]],
  ];
  for (const [url, expectedPath, expectedQuery] of cases) {
    const { path: gotPath, query } = splitUrl(url);
    assert.equal(gotPath, expectedPath, url);
    assert.deepEqual([...query.entries()], expectedQuery, url);
  }
});

test('static: the static prefix wins over every rule', () => {
  runTable(classifierWith({ bots: { cidrs: ['10.20.0.0/16'] } }), [
    { name: 'css', url: '/_static/app.css', headers: { 'user-agent': CHROME_UA, 'sec-fetch-dest': 'style' }, expect: 'static' },
    { name: 'static with a query', url: '/_static/app.js?v=3', expect: 'static' },
    { name: 'static from a bot IP', url: '/_static/x.png', ip: '10.20.1.1', expect: 'static' },
    { name: 'static from Jenkins', url: '/_static/x.png', headers: { 'user-agent': 'Jenkins/2.4' }, expect: 'static' },
    { name: 'static with a git UA', url: '/_static/x.png', headers: { 'user-agent': 'git/2.39.5' }, expect: 'static' },
    { name: 'prefix needs its slash', url: '/_staticfoo/x.css', expect: 'page' },
    { name: 'prefix only at the start', url: '/repo/_static/x.css', expect: 'page' },
    { name: 'prefix in the query does not count', url: '/x?/_static/', expect: 'page' },
  ]);
  const custom = classifierWith({ proxy: { static: { prefix: '/assets/' } } });
  runTable(custom, [
    { name: 'custom prefix', url: '/assets/a.css', expect: 'static' },
    { name: 'default prefix no longer static', url: '/_static/a.css', expect: 'page' },
  ]);
});

test('bot: bots.cidrs, bots.userAgents and the bot token', () => {
  const classifier = classifierWith({ bots: { cidrs: ['10.20.0.0/16'], tokens: [BOT_TOKEN, 'second-token-xyz'] } });
  const gitRefs = '/demo/info/refs?service=git-upload-pack';
  runTable(classifier, [
    { name: 'bot cidr', url: '/', ip: '10.20.3.4', expect: 'bot' },
    { name: 'bot cidr, IPv4-mapped IPv6 address', url: '/', ip: '::ffff:10.20.3.4', expect: 'bot' },
    { name: 'outside bot cidr', url: '/', ip: '10.21.0.1', expect: 'page' },
    { name: 'bot cidr + git clone', url: gitRefs, ip: '10.20.0.9', headers: { 'user-agent': 'git/2.39.5' }, expect: 'bot' },
    { name: 'Jenkins', url: gitRefs, headers: { 'user-agent': 'Jenkins/2.426 git/2.39' }, expect: 'bot' },
    { name: 'GitLab-Runner', url: '/', headers: { 'user-agent': 'gitlab-runner 16.5.0 (GitLab-Runner)' }, expect: 'bot' },
    { name: 'buildkite', url: '/', headers: { 'user-agent': 'buildkite-agent/3.59' }, expect: 'bot' },
    { name: 'TeamCity', url: '/', headers: { 'user-agent': 'TeamCity Server 2023.05' }, expect: 'bot' },
    { name: 'Bamboo', url: '/', headers: { 'user-agent': 'Atlassian Bamboo/9.2' }, expect: 'bot' },
    { name: 'CI as a word', url: '/', headers: { 'user-agent': 'acme CI/1.0' }, expect: 'bot' },
    { name: 'UA match is case-insensitive', url: '/', headers: { 'user-agent': 'JENKINS' }, expect: 'bot' },
    { name: '"ci" inside a word is no bot', url: '/', headers: { 'user-agent': 'special-client/1.0' }, expect: 'page' },
    { name: 'bot token', url: '/', headers: { 'x-switchyard-bot-token': BOT_TOKEN }, expect: 'bot' },
    { name: 'second bot token', url: '/', headers: { 'x-switchyard-bot-token': 'second-token-xyz' }, expect: 'bot' },
    { name: 'wrong token', url: '/', headers: { 'x-switchyard-bot-token': 'not-the-token-123' }, expect: 'page' },
    { name: 'token prefix', url: '/', headers: { 'x-switchyard-bot-token': BOT_TOKEN.slice(0, -1) }, expect: 'page' },
    { name: 'token with extra', url: '/', headers: { 'x-switchyard-bot-token': `${BOT_TOKEN}x` }, expect: 'page' },
    { name: 'empty token', url: '/', headers: { 'x-switchyard-bot-token': '' }, expect: 'page' },
    { name: 'token in another header', url: '/', headers: { 'x-bot-token': BOT_TOKEN }, expect: 'page' },
  ]);
  // an IPv6 bot range
  runTable(classifierWith({ bots: { cidrs: ['2001:db8:c1::/48'] } }), [
    { name: 'IPv6 bot range', url: '/', ip: '2001:db8:c1::7', expect: 'bot' },
    { name: 'outside IPv6 bot range', url: '/', ip: '2001:db8:c2::7', expect: 'page' },
    { name: 'IPv4 never matches an IPv6 range', url: '/', ip: '10.20.3.4', expect: 'page' },
  ]);
  // an IPv4 range written in IPv4-mapped IPv6 form matches plain IPv4 and mapped clients
  runTable(classifierWith({ bots: { cidrs: ['::ffff:10.30.0.0/112'] } }), [
    { name: 'mapped range, plain client', url: '/', ip: '10.30.5.6', expect: 'bot' },
    { name: 'mapped range, mapped client', url: '/', ip: '::ffff:10.30.5.6', expect: 'bot' },
    { name: 'mapped range, outside', url: '/', ip: '10.31.0.1', expect: 'page' },
  ]);
  // without configured tokens the header means nothing; odd client addresses never throw
  runTable(defaults, [
    { name: 'token header, no tokens configured', url: '/', headers: { 'x-switchyard-bot-token': BOT_TOKEN }, expect: 'page' },
    { name: 'empty client address', url: '/', ip: '', expect: 'page' },
    { name: 'garbage client address', url: '/', ip: 'not-an-ip', expect: 'page' },
  ]);
});

test('clone: git smart HTTP and hg wire protocol, each default alternative', () => {
  const curl = { 'user-agent': 'curl/8.5.0', accept: '*/*' };
  const hgCommands = ['capabilities', 'batch', 'getbundle', 'lookup', 'heads', 'branchmap', 'between', 'listkeys', 'known', 'clonebundles', 'stream_out', 'unbundle', 'pushkey', 'protocaps'];
  runTable(defaults, [
    { name: 'upload-pack refs', url: '/demo/info/refs?service=git-upload-pack', headers: curl, expect: 'clone' },
    { name: 'receive-pack refs', url: '/demo/info/refs?service=git-receive-pack', headers: curl, expect: 'clone' },
    { name: 'nested repo path', url: '/group/sub/demo.git/info/refs?service=git-upload-pack', headers: curl, expect: 'clone' },
    { name: 'dumb refs without service', url: '/demo/info/refs', headers: curl, expect: 'page' },
    { name: 'unknown service', url: '/demo/info/refs?service=git-evil', headers: curl, expect: 'page' },
    { name: 'service on another path', url: '/demo/info?service=git-upload-pack', headers: curl, expect: 'page' },
    { name: 'POST upload-pack', url: '/demo/git-upload-pack', method: 'POST', headers: curl, expect: 'clone' },
    { name: 'POST receive-pack', url: '/demo/git-receive-pack', method: 'POST', headers: curl, expect: 'clone' },
    { name: 'GET upload-pack path alone', url: '/demo/git-upload-pack', method: 'GET', headers: curl, expect: 'page' },
    { name: 'POST to a page', url: '/demo/comments', method: 'POST', headers: curl, expect: 'page' },
    { name: 'git content type', url: '/anything', method: 'POST', headers: { ...curl, 'content-type': 'application/x-git-upload-pack-request' }, expect: 'clone' },
    { name: 'git content type, any case', url: '/anything', method: 'POST', headers: { ...curl, 'content-type': 'Application/X-Git-Receive-Pack-Request' }, expect: 'clone' },
    ...hgCommands.map((cmd): Case => ({ name: `hg cmd=${cmd}`, url: `/demo-hg?cmd=${cmd}`, headers: curl, expect: 'clone' })),
    { name: 'hg cmd among other params', url: '/demo-hg?x=1&cmd=getbundle&heads=abc', headers: curl, expect: 'clone' },
    { name: 'repeated cmd, one matches', url: '/demo-hg?cmd=nope&cmd=batch', headers: curl, expect: 'clone' },
    { name: 'unknown hg cmd', url: '/demo-hg?cmd=rm-rf', headers: curl, expect: 'page' },
    { name: 'hg cmd must match whole', url: '/demo-hg?cmd=capabilitiesX', headers: curl, expect: 'page' },
    { name: 'cmd in the path is not a query', url: '/demo-hg/cmd=capabilities', headers: curl, expect: 'page' },
    { name: 'mercurial content type', url: '/demo-hg', method: 'POST', headers: { ...curl, 'content-type': 'application/mercurial-0.1' }, expect: 'clone' },
    { name: 'mercurial accept', url: '/demo-hg', headers: { ...curl, accept: 'application/mercurial-0.2, application/mercurial-0.1' }, expect: 'clone' },
    { name: 'git UA', url: '/demo/objects/info/packs', headers: { 'user-agent': 'git/2.39.5' }, expect: 'clone' },
    { name: 'git UA, any case', url: '/demo', headers: { 'user-agent': 'Git/2.43.0.windows.1' }, expect: 'clone' },
    { name: 'mercurial UA', url: '/demo-hg', headers: { 'user-agent': 'mercurial/proto-1.0 (Mercurial 6.3.2)' }, expect: 'clone' },
    { name: 'UA must start with git/', url: '/demo', headers: { 'user-agent': 'legit/1.0' }, expect: 'page' },
    { name: 'GitHub desktop-ish UA is not git/', url: '/demo', headers: { 'user-agent': 'GitHubDesktop/3.3' }, expect: 'page' },
  ]);
});

test('browser: Sec-Fetch-* or a Mozilla UA asking for HTML; page is the fallback', () => {
  runTable(defaults, [
    { name: 'Chrome navigation', url: '/demo', headers: { 'user-agent': CHROME_UA, accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate' }, expect: 'browser' },
    { name: 'Sec-Fetch-Dest alone', url: '/demo', headers: { 'sec-fetch-dest': 'empty' }, expect: 'browser' },
    { name: 'old Safari: Mozilla UA + text/html, no Sec-Fetch', url: '/demo', headers: { 'user-agent': 'Mozilla/5.0 (Macintosh) Version/15.0 Safari/605.1.15', accept: 'text/html,*/*;q=0.8' }, expect: 'browser' },
    { name: 'Firefox HTML', url: '/', headers: { 'user-agent': FIREFOX_UA, accept: 'text/html' }, expect: 'browser' },
    { name: 'Accept match is case-insensitive', url: '/', headers: { 'user-agent': FIREFOX_UA, accept: 'TEXT/HTML' }, expect: 'browser' },
    { name: 'Accept given as several header values', url: '/', headers: { 'user-agent': FIREFOX_UA, accept: ['application/json', 'text/html'] as unknown as string }, expect: 'browser' },
    { name: 'Mozilla UA asking for JSON', url: '/api/x', headers: { 'user-agent': FIREFOX_UA, accept: 'application/json' }, expect: 'page' },
    { name: 'Mozilla UA without Accept', url: '/', headers: { 'user-agent': FIREFOX_UA }, expect: 'page' },
    { name: 'curl asking for HTML', url: '/', headers: { 'user-agent': 'curl/8.5.0', accept: 'text/html' }, expect: 'page' },
    { name: 'empty Sec-Fetch-Dest', url: '/', headers: { 'sec-fetch-dest': '' }, expect: 'page' },
    { name: 'Node fetch (only Sec-Fetch-Mode)', url: '/api', headers: { 'user-agent': 'node', accept: '*/*', 'sec-fetch-mode': 'cors' }, expect: 'page' },
    { name: 'feed reader', url: '/demo/feed.atom', headers: { 'user-agent': 'FreshRSS/1.23', accept: 'application/atom+xml' }, expect: 'page' },
    { name: 'no headers at all', url: '/', expect: 'page' },
  ]);
});

test('first match wins: bot before clone before browser', () => {
  const classifier = classifierWith({ bots: { cidrs: ['10.20.0.0/16'], tokens: [BOT_TOKEN] } });
  runTable(classifier, [
    { name: 'Jenkins with browser headers', url: '/demo', headers: { 'user-agent': 'Mozilla/5.0 Jenkins', accept: 'text/html', 'sec-fetch-dest': 'document' }, expect: 'bot' },
    { name: 'bot token on a git clone', url: '/demo/info/refs?service=git-upload-pack', headers: { 'user-agent': 'git/2.39', 'x-switchyard-bot-token': BOT_TOKEN }, expect: 'bot' },
    { name: 'bot IP on an hg clone', url: '/demo-hg?cmd=capabilities', ip: '10.20.0.1', headers: { 'user-agent': 'mercurial/proto-1.0' }, expect: 'bot' },
    { name: 'git refs fetched by a browser tab', url: '/demo/info/refs?service=git-upload-pack', headers: { 'user-agent': CHROME_UA, accept: 'text/html', 'sec-fetch-dest': 'document' }, expect: 'clone' },
    { name: 'hg cmd from a browser', url: '/demo-hg?cmd=capabilities', headers: { 'sec-fetch-dest': 'document' }, expect: 'clone' },
  ]);
});

test('custom rules from the config: order, pathPrefix, method, query, headers, cidrs', () => {
  const classifier = classifierWith({
    classify: [
      // rules are YAML-ish: lowercase methods and mixed-case header names must still work
      { class: 'page', any: [{ pathPrefix: '/api/', method: ['post', 'put'] }] },
      { class: 'browser', any: [{ pathPrefix: '/api/' }] },
      { class: 'clone', any: [{ query: { format: '^(zip|tar\\.gz)$' } }, { headers: { 'X-Archive-Client': '^yes$' } }] },
      { class: 'bot', any: [{ cidrs: ['198.51.100.0/24', '::ffff:203.0.113.0/120'] }, { userAgent: 'crawler', path: '^/search' }] },
    ],
  });
  runTable(classifier, [
    { name: 'POST under /api/ (method lowercased in config)', url: '/api/items', method: 'POST', expect: 'page' },
    { name: 'PUT under /api/', url: '/api/items/1', method: 'PUT', expect: 'page' },
    { name: 'GET under /api/ falls to the next rule', url: '/api/items', method: 'GET', expect: 'browser' },
    { name: 'pathPrefix is a prefix, not a substring', url: '/v1/api/items', method: 'POST', expect: 'page' },
    { name: 'pathPrefix is literal, not a regex', url: '/apiX/', expect: 'page' },
    { name: 'query rule', url: '/demo/archive?format=zip', expect: 'clone' },
    { name: 'query rule, other value', url: '/demo/archive?format=rar', expect: 'page' },
    { name: 'header rule (name given in mixed case)', url: '/demo', headers: { 'x-archive-client': 'YES' }, expect: 'clone' },
    { name: 'header rule, wrong value', url: '/demo', headers: { 'x-archive-client': 'yes please' }, expect: 'page' },
    { name: 'cidrs rule', url: '/demo', ip: '198.51.100.77', expect: 'bot' },
    { name: 'cidrs rule, mapped client address', url: '/demo', ip: '::ffff:198.51.100.77', expect: 'bot' },
    { name: 'cidrs rule, mapped range', url: '/demo', ip: '203.0.113.9', expect: 'bot' },
    { name: 'cidrs rule, outside', url: '/demo', ip: '198.51.101.1', expect: 'page' },
    { name: 'AND inside one entry: both', url: '/search?q=x', headers: { 'user-agent': 'SomeCrawler/1.0' }, expect: 'bot' },
    { name: 'AND inside one entry: only UA', url: '/browse', headers: { 'user-agent': 'SomeCrawler/1.0' }, expect: 'page' },
    { name: 'AND inside one entry: only path', url: '/search?q=x', headers: { 'user-agent': 'curl/8' }, expect: 'page' },
    // the custom list replaces the defaults entirely
    { name: 'git clone without a clone rule', url: '/demo/info/refs?service=git-upload-pack', headers: { 'user-agent': 'git/2.39' }, expect: 'page' },
    { name: 'browser without a browser rule', url: '/demo', headers: { 'user-agent': CHROME_UA, accept: 'text/html', 'sec-fetch-dest': 'document' }, expect: 'page' },
    { name: 'static still first', url: '/_static/a.css', ip: '198.51.100.1', expect: 'static' },
  ]);
  // an empty rule list: everything but static is page
  runTable(classifierWith({ classify: [] }), [
    { name: 'no rules, git', url: '/demo/info/refs?service=git-upload-pack', headers: { 'user-agent': 'git/2.39' }, expect: 'page' },
    { name: 'no rules, static', url: '/_static/a.css', expect: 'static' },
  ]);
  // bot rules by reference (botCidr/botUserAgent/botToken) follow bots.* in a custom list
  const reordered = classifierWith({
    bots: { userAgents: ['RoboHammer'] },
    classify: [
      { class: 'clone', any: [{ userAgent: '^git/' }] },
      { class: 'bot', any: [{ botUserAgent: true }] },
    ],
  });
  runTable(reordered, [
    { name: 'custom bot UA', url: '/', headers: { 'user-agent': 'robohammer/2' }, expect: 'bot' },
    { name: 'default bot UAs replaced', url: '/', headers: { 'user-agent': 'Jenkins/2' }, expect: 'page' },
    { name: 'clone rule placed first wins', url: '/', headers: { 'user-agent': 'git/2 RoboHammer' }, expect: 'clone' },
  ]);
});

test('crawlers that name themselves are bots, and only they are crawlers (their fair-share key is a prefix)', () => {
  const classifier = classifierWith({});
  const googlebot = { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', accept: 'text/html' };
  const jenkins = { 'user-agent': 'Jenkins/2.440' };
  assert.equal(classifier.classify({ method: 'GET', path: '/', query: splitUrl('/').query, headers: googlebot, clientIp: '192.0.2.1' }), 'bot');
  assert.equal(classifier.isCrawler(googlebot), true);
  assert.equal(classifier.isCrawler(jenkins), false, 'a CI farm is not a crawler: its runners keep their own keys');
  assert.equal(classifier.isCrawler({ 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0' }), false);
});
