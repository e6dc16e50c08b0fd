import assert from 'node:assert/strict';
import { test } from 'node:test';
import { saturationOrder, type Measurement, type Round } from '../../bench/proxy-overhead/measure.ts';
import { verdict, type Run } from '../../bench/proxy-overhead/report.ts';
import type { TargetId, TargetSpec } from '../../bench/proxy-overhead/targets.ts';

// The proxy-overhead benchmark's statistics: which rounds are paired, and what the verdict rests on.

const spec = (id: TargetId): TargetSpec => ({ id, label: id, start: () => Promise.reject(new Error('not started in this test')) });
const round = (requestsPerSec: number, p99Ms = 1): Round => ({
  requestsPerSec,
  p50Ms: p99Ms / 2,
  p99Ms,
  responses: requestsPerSec,
  errors: 0,
  non2xx: 0,
  cpuUsPerRequest: 100,
  stealPercent: 0,
});

function measurement(id: TargetId, saturation: number[], atRateP99 = 1): Measurement {
  const saturationRounds = saturation.map((rps) => round(rps));
  return {
    spec: spec(id),
    saturationRounds,
    saturation: saturationRounds.reduce((a, b) => (b.requestsPerSec > a.requestsPerSec ? b : a)),
    atRateRounds: [round(500, atRateP99)],
    atRate: round(500, atRateP99),
  };
}

function run(measurements: Measurement[]): Run {
  return {
    measurements,
    rate: 500,
    settings: { connections: 32, warmupSec: 1, jitWarmupSec: 1, durationSec: 1, rounds: measurements[0].saturationRounds.length, rateFraction: 0.5, instances: 1 },
    machine: { cpus: 2, cpuModel: 'test', memoryGb: 1, kernel: 'test', node: 'test', loadAverage: '0' },
    date: new Date(0),
  };
}

test('saturation rounds run Switchyard and the bare forwarder back to back, swapping who goes first', () => {
  const targets = (['bare', 'direct', 'switchyard', 'nginx'] as const).map((id) => ({ id }));
  const order = (round: number) => saturationOrder(targets, round, (target) => target.id).map((target) => target.id);
  assert.deepEqual(order(1), ['bare', 'switchyard', 'direct', 'nginx']);
  assert.deepEqual(order(2), ['switchyard', 'bare', 'direct', 'nginx']);
  assert.deepEqual(order(3), ['bare', 'switchyard', 'direct', 'nginx']);
  assert.equal(order(2).length, targets.length);
});

test('the throughput verdict is the median of the paired rounds, not best against best', () => {
  // Bare had one lucky round (2000); paired with its own minute, Switchyard keeps up (0.95x and more).
  const lucky = run([measurement('bare', [1000, 2000, 1000, 1000, 1000]), measurement('switchyard', [950, 960, 1000, 970, 940]), measurement('direct', [3000])]);
  const { lines: luckyLines } = verdict(lucky);
  assert.match(luckyLines[0], /does 0\.950x .*median of 5 rounds.*mean round against mean round 0\.803x, best round against best round 0\.500x.*: met\./);

  // A consistent gap fails even when one of Switchyard's rounds was lucky.
  const gap = run([measurement('bare', [1000, 1000, 1000, 1000, 1000]), measurement('switchyard', [800, 1500, 850, 800, 820]), measurement('direct', [3000])]);
  assert.match(verdict(gap).lines[0], /does 0\.820x .*NOT met\./);
});

test('side-by-side rounds are reported as their median ratio of requests per CPU-second, and do not decide the verdict', () => {
  const sharedRound = (bareCpuUs: number, switchyardCpuUs: number, switchyardRps: number) => ({
    bare: { ...round(1000), cpuUsPerRequest: bareCpuUs },
    // the scheduler gave Switchyard more of the core than its CPU cost explains: req/s alone would say 1.0x and more
    switchyard: { ...round(switchyardRps), cpuUsPerRequest: switchyardCpuUs },
  });
  const measured = run([measurement('bare', [1000, 1000, 1000]), measurement('switchyard', [700, 700, 700]), measurement('direct', [3000])]);
  const { lines, met } = verdict({ ...measured, sharedCore: [sharedRound(200, 210, 1000), sharedRound(220, 240, 1050), sharedRound(250, 270, 990)] });
  assert.match(lines[0], /does 0\.700x .*median of 3 rounds in which the two ran back to back.*NOT met\./);
  const sideBySide = lines.find((line) => line.startsWith('Side by side'));
  assert.match(sideBySide ?? '', /serves 0\.926x the bare forwarder's requests per CPU-second \(median of 3 rounds, 0\.917-0\.952x\).*bare 220 us, Switchyard 240 us/);
  assert.equal(met, false);
});

test('with fewer than three rounds the verdict compares the best rounds', () => {
  const few = run([measurement('bare', [1000, 900]), measurement('switchyard', [920, 800]), measurement('direct', [3000])]);
  const { lines } = verdict(few);
  assert.match(lines[0], /does 0\.920x the bare http-proxy-3 forwarder \(target >= 0\.9x\): met\./);
});

test('added p99 is against the direct run, and the share of it that is Switchyard over the bare forwarder is reported', () => {
  const latency = run([measurement('bare', [1000, 1000, 1000], 2.5), measurement('switchyard', [1000, 1000, 1000], 2.75), measurement('direct', [3000], 0.75)]);
  const { lines, met } = verdict(latency);
  assert.match(lines[1], /adds 2\.000 ms to the direct p99 \(target < 1 ms\): NOT met\./);
  assert.ok(lines.some((line) => /bare forwarder adds 1\.750 ms .* Switchyard's own logic adds \+0\.250 ms/.test(line)), lines.join('\n'));
  assert.equal(met, false);
});
