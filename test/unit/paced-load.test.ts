import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { runPacedLoad } from '../../bench/lib/paced-load.ts';

// The benchmarks' open-loop generator: requests must arrive spread over time at the asked rate,
// not in per-second bursts, and a slow answer must not hold back the next send.
let server: http.Server;
let url: string;
let arrivals: number[] = [];
let slowEvery = 0;

before(async () => {
  server = http.createServer((req, res) => {
    arrivals.push(performance.now());
    const reply = () => res.end('ok');
    if (slowEvery > 0 && arrivals.length % slowEvery === 0) setTimeout(reply, 300);
    else reply();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(() => server.close());

test('sends the asked number of requests spread evenly over the run', async () => {
  arrivals = [];
  slowEvery = 0;
  const result = await runPacedLoad({ url, rate: 400, durationSec: 1, connections: 8 });
  assert.equal(result.responses, 400);
  assert.equal(result.errors + result.non2xx, 0);
  const start = arrivals[0];
  const perTenth = new Array(10).fill(0);
  for (const at of arrivals) perTenth[Math.min(9, Math.floor((at - start) / 100))]++;
  // evenly paced: about 40 per 100 ms; a per-second burst would put nearly all 400 in the first.
  // Loose bounds, so that a stall of the machine does not fail it.
  assert.ok(Math.max(...perTenth) <= 200, `arrivals per 100 ms: ${perTenth.join(' ')}`);
  assert.ok(perTenth.filter((count) => count > 0).length >= 7, `arrivals per 100 ms: ${perTenth.join(' ')}`);
});

test('keeps sending while earlier requests are still unanswered, and charges their wait', async () => {
  arrivals = [];
  slowEvery = 10; // every tenth answer takes 300 ms
  const result = await runPacedLoad({ url, rate: 200, durationSec: 1, connections: 64 });
  slowEvery = 0;
  assert.equal(result.responses, 200);
  assert.ok(arrivals[arrivals.length - 1] - arrivals[0] < 1200, 'slow answers held back later sends');
  assert.ok(result.p99Ms >= 290, `p99 ${result.p99Ms} ms does not include the slow answers`);
  assert.ok(result.p50Ms < 100, `p50 ${result.p50Ms} ms`);
});
