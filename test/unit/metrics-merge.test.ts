// Merging proxies' Prometheus text into the supervisor's one scrape: labels added, families once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { addLabels, escapeLabelValue, mergeExpositions } from '../../supervisor/metrics-merge.ts';

const PROXY = { proxy: 'a:8080' };

test('a label goes in front of the sample\'s own, or makes its block; timestamps and values stay', () => {
  assert.equal(addLabels('switchyard_queue_depth 3', PROXY), 'switchyard_queue_depth{proxy="a:8080"} 3');
  assert.equal(addLabels('switchyard_queue_depth{pool="web"} 3', PROXY), 'switchyard_queue_depth{proxy="a:8080",pool="web"} 3');
  assert.equal(addLabels('x{a="1",b="2",} 1.5e+3 1700000000000', PROXY), 'x{proxy="a:8080",a="1",b="2"} 1.5e+3 1700000000000');
  assert.equal(addLabels('x{} +Inf', PROXY), 'x{proxy="a:8080"} +Inf');
  assert.equal(addLabels('x{proxy="inner",a="1"} 1', PROXY), 'x{proxy="a:8080",exported_proxy="inner",a="1"} 1', 'a clash keeps both');
});

test('escaped label values pass through untouched, and new values are escaped', () => {
  const tricky = String.raw`x{path="a\"},b=\"c",q="back\\slash",n="line\nfeed"} 7`;
  assert.equal(addLabels(tricky, PROXY), String.raw`x{proxy="a:8080",path="a\"},b=\"c",q="back\\slash",n="line\nfeed"} 7`);
  assert.equal(escapeLabelValue('a"b\\c\nd'), String.raw`a\"b\\c\nd`);
  assert.equal(addLabels('x 1', { proxy: 'we"ird\n' }), String.raw`x{proxy="we\"ird\n"} 1`);
});

test('lines that are not samples are refused', () => {
  for (const bad of ['x', 'x{a="1"}', 'x{a="1" 1', 'x{a=1} 1', '{a="1"} 1', '9x 1']) assert.equal(addLabels(bad, PROXY), undefined, bad);
});

test("two proxies' real prom-client text: every family's HELP and TYPE once, histograms whole, each sample labelled", async () => {
  const texts = await Promise.all(
    [1, 2].map(async (n) => {
      const registry = new Registry();
      const requests = new Counter({ name: 'switchyard_requests_total', help: 'Requests "answered"\\ by lane', labelNames: ['lane', 'code'], registers: [registry] });
      requests.inc({ lane: 'page', code: '200' }, n);
      const duration = new Histogram({ name: 'switchyard_request_duration_seconds', help: 'Time', labelNames: ['lane'], buckets: [0.1, 1], registers: [registry] });
      duration.observe({ lane: 'page' }, n === 1 ? 0.5 : 2);
      return registry.metrics();
    }),
  );
  const own = '# HELP switchyard_worker_up Up\n# TYPE switchyard_worker_up gauge\nswitchyard_worker_up{worker="web-0",state="ready"} 1\n';
  const merged = mergeExpositions([
    { text: texts[0], labels: { proxy: 'a:8080' } },
    { text: texts[1], labels: { proxy: 'b:8080' } },
    { text: own, labels: {} },
  ]);
  const lines = merged.trimEnd().split('\n');
  for (const family of ['switchyard_requests_total', 'switchyard_request_duration_seconds', 'switchyard_worker_up']) {
    assert.equal(lines.filter((line) => line.startsWith(`# HELP ${family} `)).length, 1, `${family} HELP once:\n${merged}`);
    assert.equal(lines.filter((line) => line.startsWith(`# TYPE ${family} `)).length, 1, `${family} TYPE once`);
  }
  assert.ok(lines.includes('switchyard_requests_total{proxy="a:8080",lane="page",code="200"} 1'), merged);
  assert.ok(lines.includes('switchyard_requests_total{proxy="b:8080",lane="page",code="200"} 2'));
  assert.ok(lines.includes('switchyard_request_duration_seconds_bucket{proxy="a:8080",le="1",lane="page"} 1'));
  assert.ok(lines.includes('switchyard_request_duration_seconds_bucket{proxy="b:8080",le="1",lane="page"} 0'));
  assert.ok(lines.includes('switchyard_request_duration_seconds_sum{proxy="b:8080",lane="page"} 2'));
  assert.ok(lines.includes('switchyard_request_duration_seconds_count{proxy="a:8080",lane="page"} 1'));
  assert.ok(lines.includes('switchyard_worker_up{worker="web-0",state="ready"} 1'), 'the supervisor\'s own series stay unlabelled');
  // every sample sits under its own family's TYPE line
  let family = '';
  for (const line of lines) {
    const type = /^# TYPE (\S+)/.exec(line);
    if (type) family = type[1];
    else if (!line.startsWith('#')) assert.ok(line.startsWith(family), `${line} under ${family}`);
  }
  assert.ok(lines.includes('# HELP switchyard_requests_total Requests "answered"\\\\ by lane'), 'HELP text as the first source wrote it');
});

test('a family only one source has, samples without HELP, and empty input', () => {
  const merged = mergeExpositions([
    { text: 'bare_metric 4\n# a comment\n', labels: PROXY },
    { text: '', labels: { proxy: 'b:8080' } },
  ]);
  assert.equal(merged, 'bare_metric{proxy="a:8080"} 4\n');
  assert.equal(mergeExpositions([]), '');
});
