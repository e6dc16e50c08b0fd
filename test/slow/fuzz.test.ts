import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failuresOf, runFuzz } from '../fuzz/run.ts';

// A bounded slice of `npm run fuzz`: 3,000 seeded hostile conversations (16 at a time) against a
// real proxy process. Long runs: npm run fuzz -- --seed N --count M.
test('3,000 hostile conversations: the proxy stays up, none hangs, nothing leaks, memory stays bounded', async () => {
  const report = await runFuzz({ seed: 20261204, count: 3000, concurrency: 16 });
  assert.equal(report.cases, 3000);
  assert.deepEqual(failuresOf(report), []);
  assert.ok(report.rssMb.end - report.rssMb.baseline < 128, `proxy RSS went from ${report.rssMb.baseline} to ${report.rssMb.end} MB`);
  assert.ok((report.outcomes['200'] ?? 0) > 100, 'enough conversations reached a worker and back to mean something');
});
