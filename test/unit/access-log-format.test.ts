import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AccessEntry, escapeField, formatCombined, formatJson, formatTimeIso, formatTimeLocal, LogClock } from '../../proxy/access-log-format.ts';

// 2000-10-10T20:55:36.789Z: nginx's documentation example, 13:55:36 at -0700
const INSTANT = Date.UTC(2000, 9, 10, 20, 55, 36, 789);

const entry = (fields: Partial<AccessEntry> = {}): AccessEntry => ({
  client: '203.0.113.7',
  method: 'GET',
  url: '/demo-git/tree/main',
  httpVersion: '1.1',
  status: 200,
  bytes: 5120,
  referer: 'http://example.com/',
  userAgent: 'Mozilla/5.0 (X11)',
  lane: 'browser',
  worker: 'web-1',
  queueMs: 12.345,
  upstreamMs: 3.21,
  totalMs: 20.06,
  retried: false,
  cloneCache: undefined,
  ...fields,
});

test('$time_local: day/Mon/year:hh:mm:ss with the zone offset, east and west, half and quarter hours', () => {
  assert.equal(formatTimeLocal(INSTANT, -420), '10/Oct/2000:13:55:36 -0700');
  assert.equal(formatTimeLocal(INSTANT, 0), '10/Oct/2000:20:55:36 +0000');
  assert.equal(formatTimeLocal(INSTANT, 330), '11/Oct/2000:02:25:36 +0530');
  assert.equal(formatTimeLocal(INSTANT, 345), '11/Oct/2000:02:40:36 +0545');
  assert.equal(formatTimeLocal(INSTANT, -570), '10/Oct/2000:11:25:36 -0930');
  assert.equal(formatTimeLocal(Date.UTC(2024, 0, 1, 0, 0, 0), 60), '01/Jan/2024:01:00:00 +0100');
});

test('$time_iso8601: the same instant with a colon in the offset', () => {
  assert.equal(formatTimeIso(INSTANT, -420), '2000-10-10T13:55:36-07:00');
  assert.equal(formatTimeIso(INSTANT, 0), '2000-10-10T20:55:36+00:00');
  assert.equal(formatTimeIso(INSTANT, 330), '2000-10-11T02:25:36+05:30');
});

test('the clock formats in the process time zone, once a second, and follows a daylight saving change', () => {
  const zone = process.env.TZ;
  process.env.TZ = 'America/Los_Angeles';
  try {
    let now = Date.UTC(2024, 2, 10, 9, 59, 59, 500); // 01:59:59.5 PST, half a second before the clocks go forward
    const clock = new LogClock(() => now);
    clock.tick();
    assert.equal(clock.local, '10/Mar/2024:01:59:59 -0800');
    assert.equal(clock.iso, '2024-03-10T01:59:59-08:00');
    process.env.TZ = 'Asia/Kolkata';
    now += 400; // the same second: formatted once, so still in the zone it was formatted in
    clock.tick();
    assert.equal(clock.local, '10/Mar/2024:01:59:59 -0800');
    process.env.TZ = 'America/Los_Angeles';
    now += 200; // 10:00:00.1Z, 03:00:00 PDT
    clock.tick();
    assert.equal(clock.local, '10/Mar/2024:03:00:00 -0700');
    assert.equal(clock.iso, '2024-03-10T03:00:00-07:00');
    process.env.TZ = 'Asia/Kolkata';
    now += 1000;
    clock.tick();
    assert.equal(clock.local, '10/Mar/2024:15:30:01 +0530');
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
});

test('escaping as nginx: quotes, backslashes, control bytes and bytes from 0x7f up become \\xHH', () => {
  assert.equal(escapeField('plain /path?q=1&b=a+b ~!'), 'plain /path?q=1&b=a+b ~!');
  assert.equal(escapeField('say "hi"'), 'say \\x22hi\\x22');
  assert.equal(escapeField('back\\slash'), 'back\\x5Cslash');
  assert.equal(escapeField('tab\there\r\n\x00\x1b[31m'), 'tab\\x09here\\x0D\\x0A\\x00\\x1B[31m');
  assert.equal(escapeField('del\x7f'), 'del\\x7F');
  // Node gives header bytes as latin1 characters: UTF-8 "é" arrives as two of them
  assert.equal(escapeField(Buffer.from('café', 'utf8').toString('latin1')), 'caf\\xC3\\xA9');
  // a character above 0xff (not from the parser) is escaped byte by byte as UTF-8
  assert.equal(escapeField('€'), '\\xE2\\x82\\xAC');
});

test('a combined line is exactly nginx\'s, with "-" for absent headers and escaped fields', () => {
  assert.equal(
    formatCombined(entry(), '10/Oct/2000:13:55:36 -0700'),
    '203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] "GET /demo-git/tree/main HTTP/1.1" 200 5120 "http://example.com/" "Mozilla/5.0 (X11)"\n',
  );
  assert.equal(
    formatCombined(entry({ referer: undefined, userAgent: undefined, status: 499, bytes: 0, httpVersion: '1.0' }), 'T'),
    '203.0.113.7 - - [T] "GET /demo-git/tree/main HTTP/1.0" 499 0 "-" "-"\n',
  );
  // an empty header is empty, as nginx prints a found but empty variable
  assert.equal(formatCombined(entry({ referer: '' }), 'T').split(' "').at(-2), '"');
  const forged = formatCombined(entry({ url: '/x"y', userAgent: 'evil" "injected\n127.0.0.1 - - [fake]' }), 'T');
  assert.equal(forged, '203.0.113.7 - - [T] "GET /x\\x22y HTTP/1.1" 200 5120 "http://example.com/" "evil\\x22 \\x22injected\\x0A127.0.0.1 - - [fake]"\n');
  assert.equal(forged.split('\n').length, 2, 'one line, whatever the client sent');
});

test('a JSON line has every key, nulls for what is not known, and times in tenths of a millisecond', () => {
  const line = formatJson(entry({ retried: true, cloneCache: 'coalesced' }), '2000-10-10T13:55:36-07:00');
  assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
  const parsed = JSON.parse(line);
  const { httpVersion, ...fields } = entry({ retried: true, cloneCache: 'coalesced' });
  assert.deepEqual(parsed, { ...fields, time: '2000-10-10T13:55:36-07:00', protocol: `HTTP/${httpVersion}`, queueMs: 12.3, upstreamMs: 3.2, totalMs: 20.1 });
  assert.deepEqual(Object.keys(parsed), ['time', 'client', 'method', 'url', 'protocol', 'status', 'bytes', 'referer', 'userAgent', 'lane', 'worker', 'queueMs', 'upstreamMs', 'totalMs', 'retried', 'cloneCache']);
  const early = JSON.parse(formatJson(entry({ lane: undefined, worker: undefined, queueMs: undefined, upstreamMs: undefined, referer: undefined, userAgent: 'a"b\n' }), 'T'));
  assert.equal(early.lane, null);
  assert.equal(early.worker, null);
  assert.equal(early.queueMs, null);
  assert.equal(early.upstreamMs, null);
  assert.equal(early.referer, null);
  assert.equal(early.cloneCache, null);
  assert.equal(early.userAgent, 'a"b\n');
});
