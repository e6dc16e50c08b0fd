import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../lib/config.ts';
import { ConnectionTracker } from '../../proxy/connections.ts';
import { Pool } from '../../proxy/pool.ts';
import { ProxyStats } from '../../proxy/stats.ts';

// ProxyStats queues each answered request and counts the queue later (stats.ts record): whatever
// reads the numbers must still see every request answered before the read, in its own minute.

function makeStats(): ProxyStats {
  const config = validateConfig({}, 'test');
  const pool = new Pool('web', config.pools.web, []);
  return new ProxyStats([pool], new ConnectionTracker(config.proxy.clients, config.proxy.limits), { page: pool });
}

const MINUTE = 60_000;
const minuteStart = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;

function lane(stats: ProxyStats, name: string) {
  return stats.summary(minuteStart + MINUTE + 30_000).find((entry) => entry.lane === name)!;
}

test('a summary counts every request recorded before it, with its errors', () => {
  const stats = makeStats();
  stats.record('page', 200, 0.002, minuteStart + MINUTE + 1000);
  stats.record('page', 502, 0.004, minuteStart + MINUTE + 2000);
  stats.record('clone', 200, 1.5, minuteStart + MINUTE + 3000);
  const page = lane(stats, 'page');
  assert.equal(page.totalRequests, 2);
  assert.equal(page.totalErrors, 1);
  assert.equal(page.minute.requests, 2);
  assert.equal(page.minute.errors, 1);
  const cloneP99 = lane(stats, 'clone').minute.p99Ms;
  assert.ok(Math.abs(cloneP99 - 1500) < 15, `clone p99 ${cloneP99} ms, expected 1500 within the histogram's 1%`);
});

test('requests land in the minute they ended in, even when counted after it', () => {
  const stats = makeStats();
  for (let i = 0; i < 3; i++) stats.record('page', 200, 0.001, minuteStart + 59_000 + i);
  stats.record('page', 200, 0.001, minuteStart + MINUTE + 500);
  const [finished] = stats.finishedMinutes(undefined, minuteStart + MINUTE + 1000);
  assert.equal(finished.minute, new Date(minuteStart).toISOString());
  assert.equal(finished.requests, 3, 'the three requests of the earlier minute stay in it');
  assert.equal(lane(stats, 'page').minute.requests, 1);
});

test('more requests than the queue holds are all counted', () => {
  const stats = makeStats();
  for (let i = 0; i < 5000; i++) stats.record('browser', i % 10 === 0 ? 503 : 200, 0.001, minuteStart + MINUTE + 100);
  const browser = lane(stats, 'browser');
  assert.equal(browser.totalRequests, 5000);
  assert.equal(browser.totalErrors, 500);
});

test('a Prometheus scrape includes queued requests', async () => {
  const stats = makeStats();
  stats.record('page', 200, 0.002);
  const first = await stats.registry.metrics();
  assert.match(first, /switchyard_requests_total\{lane="page",code="200"\} 1\b/);
  assert.match(first, /switchyard_request_duration_seconds_count\{lane="page"\} 1\b/);
  stats.record('page', 200, 0.002);
  const direct = await stats.registry.metrics();
  assert.match(direct, /switchyard_requests_total\{lane="page",code="200"\} 2\b/);
  assert.match(direct, /switchyard_request_duration_seconds_count\{lane="page"\} 2\b/);
});

test('a request of an earlier minute counted after the turn joins the new minute and resets nothing', () => {
  const stats = makeStats();
  stats.record('page', 200, 0.001, minuteStart + MINUTE + 500);
  assert.equal(lane(stats, 'page').minute.requests, 1);
  // performance.timeOrigin + now() and Date.now() may disagree by a little around the turn
  stats.record('page', 200, 0.001, minuteStart + MINUTE - 5);
  assert.equal(lane(stats, 'page').minute.requests, 2);
  assert.deepEqual(stats.finishedMinutes(undefined, minuteStart + MINUTE + 30_000), []);
});
