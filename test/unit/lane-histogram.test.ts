import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { LaneHistogram } from '../../proxy/lane-histogram.ts';

// The proxy's request-duration histogram keeps its counts itself; what /metrics shows must be
// exactly what prom-client's own Histogram shows for the same observations.
const BOUNDS = [0.001, 0.01, 0.1, 1, 10];
const LANES = ['browser', 'page', 'clone'] as const;

function both() {
  const reference = new Registry();
  const theirs = new Histogram({ name: 'd_seconds', help: 'durations', labelNames: ['lane'], buckets: BOUNDS, registers: [reference] });
  const ours = new Registry();
  const mine = new LaneHistogram('d_seconds', 'durations', LANES, BOUNDS);
  mine.registerIn(ours);
  return { reference, theirs, ours, mine };
}

test('exports the same text as prom-client for the same observations', async () => {
  const { reference, theirs, ours, mine } = both();
  // on a bound, between bounds, below the first and above the last; one lane never observed
  const observations: Array<[(typeof LANES)[number], number]> = [
    ['page', 0.001], ['page', 0.0005], ['page', 0.05], ['page', 0.05], ['page', 10], ['page', 42],
    ['browser', 0.01], ['browser', 0.2], ['browser', 3.5],
  ];
  for (const [lane, value] of observations) {
    theirs.observe({ lane }, value);
    mine.observe(lane, value);
  }
  assert.equal(await ours.metrics(), await reference.metrics());
  assert.match(await ours.metrics(), /d_seconds_bucket\{le="0.1",lane="page"\} 4/);
  assert.doesNotMatch(await ours.metrics(), /lane="clone"/);
});

test('reset clears every lane, as prom-client does', async () => {
  const { reference, theirs, ours, mine } = both();
  theirs.observe({ lane: 'clone' }, 0.3);
  mine.observe('clone', 0.3);
  ours.resetMetrics();
  reference.resetMetrics();
  assert.equal(await ours.metrics(), await reference.metrics());
  assert.doesNotMatch(await ours.metrics(), /_count/);
});
