import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recycleReason, thresholdsFor } from '../../supervisor/recycle-policy.ts';

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
