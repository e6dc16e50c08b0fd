import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextRecycle, recycleReason, thresholdsFor } from '../../supervisor/recycle-policy.ts';

const recycle = { maxRequests: 1000, maxAgeSec: 3600, maxRssMb: 512, jitter: 0.2 };

test('jitter only lowers the limits, by up to the configured fraction', () => {
  assert.deepEqual(thresholdsFor(recycle, 0), { maxRequests: 1000, maxAgeSec: 3600, maxRssBytes: 512 * 1024 * 1024 });
  const lowest = thresholdsFor(recycle, 0.999999);
  assert.equal(lowest.maxRequests, 800);
  assert.equal(lowest.maxAgeSec, 2880);
  assert.ok(lowest.maxRssBytes >= Math.floor(0.8 * 512 * 1024 * 1024));
});

test('workers drawing different numbers get different limits, so a pool does not recycle at once', () => {
  const limits = new Set([0.1, 0.4, 0.7, 0.95].map((draw) => thresholdsFor(recycle, draw).maxRequests));
  assert.equal(limits.size, 4);
});

test('a zero limit is off, whatever the jitter', () => {
  const off = thresholdsFor({ maxRequests: 0, maxAgeSec: 0, maxRssMb: 0, jitter: 0.5 }, 0.5);
  assert.deepEqual(off, { maxRequests: 0, maxAgeSec: 0, maxRssBytes: 0 });
  assert.equal(recycleReason(off, { served: 1e9, uptimeSec: 1e9, rssBytes: 1e12 }), undefined);
});

test('the reason names the limit that was reached; RSS comes first', () => {
  const limits = thresholdsFor(recycle, 0);
  const fresh = { served: 10, uptimeSec: 10, rssBytes: 100 * 1024 * 1024 };
  assert.equal(recycleReason(limits, fresh), undefined);
  assert.equal(recycleReason(limits, { ...fresh, served: 1000 }), 'requests');
  assert.equal(recycleReason(limits, { ...fresh, uptimeSec: 3600 }), 'age');
  assert.equal(recycleReason(limits, { ...fresh, rssBytes: 600 * 1024 * 1024 }), 'rss');
  assert.equal(recycleReason(limits, { served: 5000, uptimeSec: 5000, rssBytes: 600 * 1024 * 1024 }), 'rss');
});

test('the next recycle is the limit with the largest share used, with what is left of it', () => {
  const limits = thresholdsFor(recycle, 0); // 1000 requests, 3600 s, 512 MB
  const MB = 1024 * 1024;
  assert.deepEqual(nextRecycle(limits, { served: 800, uptimeSec: 600, rssBytes: 128 * MB }), { reason: 'requests', left: 200, used: 0.8 });
  assert.deepEqual(nextRecycle(limits, { served: 100, uptimeSec: 3000, rssBytes: 128 * MB }), { reason: 'age', left: 600, used: 3000 / 3600 });
  assert.deepEqual(nextRecycle(limits, { served: 100, uptimeSec: 600, rssBytes: 384 * MB }), { reason: 'rss', left: 128 * MB, used: 0.75 });
  assert.deepEqual(nextRecycle(limits, { served: 500, uptimeSec: 1800, rssBytes: 256 * MB }), { reason: 'rss', left: 256 * MB, used: 0.5 }, 'a tie: RSS first, as recycleReason');
  assert.deepEqual(nextRecycle(limits, { served: 1500, uptimeSec: 0, rssBytes: 0 }), { reason: 'requests', left: 0, used: 1 }, 'past a limit: due, nothing left');
});

test('the next recycle skips limits that are off, and is undefined without any', () => {
  const requestsOff = thresholdsFor({ ...recycle, maxRequests: 0 }, 0);
  assert.equal(nextRecycle(requestsOff, { served: 1e9, uptimeSec: 360, rssBytes: 0 })?.reason, 'age');
  assert.equal(nextRecycle(thresholdsFor({ maxRequests: 0, maxAgeSec: 0, maxRssMb: 0, jitter: 0 }, 0), { served: 1, uptimeSec: 1, rssBytes: 1 }), undefined);
});
