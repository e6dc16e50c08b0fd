// The classifier against the requests headless Chromium sends for a page, its /_static/
// subresources and its fetch() call, captured by a real HTTP server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startCaptureServer, type CaptureServer } from '../helpers/capture-server.ts';
import { available, cleanEnv, describe as describeRun, removeDir, run, tempDir } from '../helpers/capture-clients.ts';
import { classifierWith, classifyCaptured, show } from '../helpers/classify-captured.ts';

const defaults = classifierWith();
const withBotIp = classifierWith({ bots: { cidrs: ['127.0.0.1/32'] } });

// .ci/run installs Chromium and sets SWITCHYARD_REQUIRE_CLIENTS: there a missing one fails the test instead of skipping it.
const HAVE_CHROMIUM = process.env.SWITCHYARD_REQUIRE_CLIENTS === '1' || available('chromium');
const CHROMIUM = existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : 'chromium';

let work: string;
let env: Record<string, string>;
let server: CaptureServer;

before(async () => {
  work = tempDir('classify-chromium');
  env = cleanEnv(path.join(work, 'home'));
  server = await startCaptureServer({ env });
});

after(async () => {
  await server?.close();
  if (work) removeDir(work);
});

test('Chromium: navigation is browser, /_static/ subresources are static, its fetch() is browser', { skip: !HAVE_CHROMIUM && 'chromium is not installed' }, async () => {
  const mark = server.mark();
  const profile = path.join(work, 'chromium-profile');
  const result = await run(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--no-default-browser-check',
      `--user-data-dir=${profile}`,
      '--dump-dom',
      `${server.baseUrl}/page`,
    ],
    { env: { ...env, HOME: profile }, timeoutMs: 30_000 },
  );
  assert.equal(result.code, 0, `chromium failed: ${describeRun(result)}`);
  assert.match(result.stdout, /<h1>capture<\/h1>/, 'chromium did not render the page');
  const requests = server.since(mark);
  const find = (url: string) => {
    const found = requests.find((r) => r.url === url);
    assert.ok(found, `chromium never requested ${url}\n${show(requests)}`);
    return found;
  };
  const navigation = find('/page');
  assert.equal(navigation.headers['sec-fetch-dest'], 'document');
  assert.match(String(navigation.headers['user-agent']), /^Mozilla\//);
  assert.match(String(navigation.headers.accept), /text\/html/);
  assert.equal(classifyCaptured(defaults, navigation), 'browser');

  for (const url of ['/_static/app.css', '/_static/logo.png']) {
    const subresource = find(url);
    assert.ok(subresource.headers['sec-fetch-dest'], `no Sec-Fetch-Dest on ${url}`);
    assert.equal(classifyCaptured(defaults, subresource), 'static', url);
    // static is decided before the bot rule
    assert.equal(classifyCaptured(withBotIp, subresource), 'static', `${url} from a bot IP`);
  }
  const api = find('/api/data');
  assert.equal(api.headers['sec-fetch-dest'], 'empty');
  assert.equal(classifyCaptured(defaults, api), 'browser');
  for (const request of requests) {
    assert.notEqual(classifyCaptured(defaults, request), 'page', `a Chromium request fell through to page: ${request.url}`);
    assert.notEqual(classifyCaptured(defaults, request), 'clone', `a Chromium request was taken for a clone: ${request.url}`);
  }
});
